package routeros_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"authwatch/watcher/routeros"
	"authwatch/watcher/routeros/routerostest"
)

func TestCheck(t *testing.T) {
	srv, err := routerostest.New(routerostest.Options{User: "authwatch", Password: "right", Identity: "bras-centro"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := routeros.Config{Name: "bras-centro", Address: srv.Addr(), User: "authwatch", Password: "right"}
	id, ver, err := routeros.Check(context.Background(), cfg)
	if err != nil || id != "bras-centro" || ver == "" {
		t.Fatalf("check: %q %q %v", id, ver, err)
	}
	cfg.Password = "wrong"
	_, _, err = routeros.Check(context.Background(), cfg)
	if !errors.Is(err, routeros.ErrLoginRefused) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad password: %v", err)
	}
}
