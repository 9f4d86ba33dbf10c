package gateway_test

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/governor"
	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/valyala/fasthttp"
)

// checkHeapCountsGuests refreshes the governor's heap source and fails
// unless its reading adds the guests' linear memory to the Go heap. It
// returns the guest bytes. No call may be in flight.
func checkHeapCountsGuests(tb testing.TB, gov *governor.Governor, guestBytes func() int64) int64 {
	tb.Helper()
	hs := gov.Heap()
	hs.Refresh()
	guests := guestBytes()
	if hs.ExtraBytes() != guests {
		tb.Fatalf("heap source counts %d bytes outside the Go heap; the guests hold %d", hs.ExtraBytes(), guests)
	}
	if hs.UsedBytes() < hs.LiveBytes()+guests || hs.UsedBytes() < guests {
		tb.Fatalf("heap source reads %d bytes: live heap %d + guests %d", hs.UsedBytes(), hs.LiveBytes(), guests)
	}
	want := float64(hs.UsedBytes()-hs.BaselineBytes()) / float64(hs.Limit()-hs.BaselineBytes())
	if lvl := hs.Level(); lvl < want*0.999 || lvl > want*1.001 {
		tb.Fatalf("go_heap level %v, want (heap + guests) / limit = %v", lvl, want)
	}
	for _, s := range gov.Snapshot().Sources {
		if s.Name == governor.HeapSourceName && s.Level < float64(guests)/float64(hs.Limit()) {
			tb.Fatalf("snapshot go_heap level %v below the guests' share %v", s.Level, float64(guests)/float64(hs.Limit()))
		}
	}
	return guests
}

// TestAppMemoryLimitCountsGuestMemory: the WASM guests' linear memory,
// which lies outside the Go heap, counts against --memory-limit through
// the governor's heap source.
func TestAppMemoryLimitCountsGuestMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "transforms")
	if err := e2e.BuildGuests(dir, e2e.Example("filter")); err != nil {
		t.Fatal(err)
	}

	// No transforms: nothing outside the Go heap.
	bare := startApp(t, io.Discard, "--sink", "stdout", "--memory-limit", "1GiB")
	if got := checkHeapCountsGuests(t, bare.Governor(), bare.Host().GuestMemoryBytes); got != 0 {
		t.Fatalf("no transforms: %d guest bytes", got)
	}
	if lim := bare.Governor().Heap().Limit(); lim != 1<<30 {
		t.Fatalf("heap limit %d, want --memory-limit", lim)
	}

	app := startApp(t, io.Discard, "--sink", "stdout", "--memory-limit", "1GiB", "--transforms", dir, "--pipeline", "filter")
	loaded := checkHeapCountsGuests(t, app.Governor(), app.Host().GuestMemoryBytes)
	if loaded < 1<<20 {
		t.Fatalf("with a transform loaded: %d guest bytes, want its instance's memory", loaded)
	}

	url := "http://" + app.HTTPAddr() + "/v1/events"
	c := &fasthttp.Client{}
	for range 5 {
		if code, resp := post(t, c, url, []byte(`{"event":"click","n":1}`+"\n"+`{"event":"heartbeat"}`)); code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
	}
	if got := checkHeapCountsGuests(t, app.Governor(), app.Host().GuestMemoryBytes); got < loaded {
		t.Fatalf("after traffic: %d guest bytes, was %d", got, loaded)
	}
}
