package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1_610_000, 8_000_000, 1 << 40, 1<<47 - 1} {
		b := bucketOf(v)
		if hi := bucketHigh(b); hi < v {
			t.Errorf("value %d in bucket %d whose top is %d", v, b, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Errorf("value %d in bucket %d, but bucket %d reaches %d", v, b, b-1, bucketHigh(b-1))
		}
	}
	if b := bucketOf(math.MaxInt64); b != numBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last", b)
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		// Log-normal around 1.6 ms with a long tail, like ack latency.
		v := time.Duration(math.Exp(rng.NormFloat64()*0.8) * 1.6e6)
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/subBuckets {
			t.Errorf("p%v = %v, exact %v (%.2f%% off)", q*100, got, exact, rel*100)
		}
	}
	if h.Max() != vals[len(vals)-1] {
		t.Errorf("max %v, want %v", h.Max(), vals[len(vals)-1])
	}
	s := h.Summary()
	if s.Count != int64(len(vals)) || s.MinMS != ms(vals[0]) {
		t.Errorf("summary %+v", s)
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Summary() != (Latency{}) {
		t.Error("empty histogram is not all zeros")
	}
}
