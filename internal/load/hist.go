package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets, as HdrHistogram does:
// values below 2·subBuckets ns are exact, larger ones fall into one of
// subBuckets buckets per power of two, so any percentile is within 1/64
// (1.6 %) of the true value. Its memory is fixed (about 20 KiB) whatever
// the count, so a run of millions of requests costs no more than a short
// one. Record is lock-free and safe for concurrent use.
type Histogram struct {
	counts [numBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64 // ns; overflows only after ~292 years of latency
	min    atomic.Int64
	max    atomic.Int64
}

const (
	subBits    = 6
	subBuckets = 1 << subBits // buckets per power of two
	// maxShift bounds the values held to 2^(maxShift+7) ns, about 39
	// hours; larger ones are clamped into the last bucket (and max).
	maxShift   = 40
	numBuckets = 2*subBuckets + maxShift*subBuckets
)

// bucketOf returns the bucket of v ns (v ≥ 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < 2*subBuckets {
		return int(u)
	}
	shift := bits.Len64(u) - (subBits + 1) // u>>shift is in [64, 128)
	if shift > maxShift {
		return numBuckets - 1
	}
	return 2*subBuckets + (shift-1)*subBuckets + int(u>>uint(shift)) - subBuckets
}

// bucketHigh returns the largest value that falls into bucket b.
func bucketHigh(b int) int64 {
	if b < 2*subBuckets {
		return int64(b)
	}
	b -= 2 * subBuckets
	shift := b/subBuckets + 1
	low := int64(subBuckets+b%subBuckets) << uint(shift)
	return low + (int64(1) << uint(shift)) - 1
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)].Add(1)
	if h.n.Add(1) == 1 {
		// The first value seeds min; a racing second one is fixed below.
		h.min.Store(v)
	}
	h.sum.Add(v)
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.n.Load() }

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the value below which a fraction q (0..1) of the
// recorded values fall, as the upper end of its bucket but never above Max.
// It is 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	// The rank of the value wanted, 1-based: the 99th percentile of 100
	// values is the 99th smallest.
	rank := int64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen int64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			return min(time.Duration(bucketHigh(b)), h.Max())
		}
	}
	return h.Max()
}

// Latency summarises a histogram in milliseconds, for reports.
type Latency struct {
	Count  int64   `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Summary returns the histogram's count, min, mean, p50, p90, p99, p99.9
// and max.
func (h *Histogram) Summary() Latency {
	n := h.n.Load()
	if n == 0 {
		return Latency{}
	}
	return Latency{
		Count:  n,
		MinMS:  ms(time.Duration(h.min.Load())),
		MeanMS: ms(time.Duration(h.sum.Load() / n)),
		P50MS:  ms(h.Quantile(0.50)),
		P90MS:  ms(h.Quantile(0.90)),
		P99MS:  ms(h.Quantile(0.99)),
		P999MS: ms(h.Quantile(0.999)),
		MaxMS:  ms(h.Max()),
	}
}

// ms is d in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}
