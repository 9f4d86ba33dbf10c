package gateway

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// heapHeld returns the live heap f's result holds: live heap after a GC,
// with and without it.
func heapHeld(f func() any) int64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC() // and the pools' victims
	runtime.ReadMemStats(&m0)
	keep := f()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(keep)
	return int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
}

// TestRequestBookkeeping measures the heap a split, queued request holds
// beyond its body, per record and per dead letter, and checks that the
// lease (bookkeeping) covers it and does not overstate it by much.
func TestRequestBookkeeping(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		n    int
	}{
		{"records", "{}", 1_000_000},
		{"dead letters", "x", 100_000},
		{"duplicate keys", `{"a":1,"a":2}`, 100_000},
		{"distinct duplicate keys", "", 100_000},
	} {
		n := tc.n
		body := bytes.Repeat([]byte(tc.line+"\n"), n)
		if tc.line == "" { // every line repeats a name of its own
			var b bytes.Buffer
			for i := range n {
				fmt.Fprintf(&b, `{"k%d":1,"k%d":2}`+"\n", i, i)
			}
			body = b.Bytes()
		}
		var leased int64
		r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 30})
		held := heapHeld(func() any {
			out := splitOut{tag: 1}
			out.spans = make([]span, 0, bytes.Count(body, []byte{'\n'})+1)
			if err := split(body, kindNDJSON, &out); err != nil {
				t.Fatal(err)
			}
			leased = bookkeeping(&out)
			a := newAck(1, &out, nil)
			if err := r.Enqueue(a); err != nil {
				t.Fatal(err)
			}
			return a
		})
		r.FailAll(ErrShuttingDown)
		t.Logf("%s: %d held, %d leased: %.1f bytes per event held, %.1f leased", tc.name, held, leased, float64(held)/float64(n), float64(leased)/float64(n))
		if held > leased+leased/100 { // 1%: the GC's accounting noise
			t.Errorf("%s: %d bytes held, only %d leased", tc.name, held, leased)
		}
		if leased > held+held/4+64<<10 {
			t.Errorf("%s: %d bytes leased for %d held", tc.name, leased, held)
		}
	}
}

// TestLeaseCoversBookkeeping: the lease of a request in the queue is its
// body's buffer (the size class it was carved in, bodypool.go) plus its
// bookkeeping, and it is returned when the request resolves.
func TestLeaseCoversBookkeeping(t *testing.T) {
	app := newTestServer(t, ServerConfig{})
	body := bytes.Repeat([]byte("{}\n"), 10_000)
	done := make(chan int, 1)
	go func() { code, _ := app.post(t, body); done <- code }()
	var got int64
	waitUntil(t, func() bool { got = app.gov.Guard().InFlight(); return got > 0 && app.recv.Pending() == 1 })
	_, buf := bodyClass(len(body))
	if want := int64(buf) + requestCost + 10_001*spanCost; got != want {
		t.Fatalf("in flight %d bytes, want body + bookkeeping = %d", got, want)
	}
	app.drain(t)
	if code := <-done; code != 200 {
		t.Fatalf("status %d", code)
	}
	waitUntil(t, func() bool { return app.gov.Guard().InFlight() == 0 })
}
