package gateway

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/sluicehq/sluice/engine"
)

func TestBodyClass(t *testing.T) {
	prev := 0
	for n := 1; n <= 1<<maxBodyShift+10; n += 1 + n/64 {
		c, size := bodyClass(n)
		if n > 1<<maxBodyShift {
			if c < bodyClasses {
				t.Fatalf("%d bytes: class %d, want none", n, c)
			}
			continue
		}
		if size < n || (n > 1<<minBodyShift && size > n+n/4) || c < 0 || c >= bodyClasses {
			t.Fatalf("%d bytes: class %d of %d bytes", n, c, size)
		}
		if c < prev {
			t.Fatalf("%d bytes: class %d after %d", n, c, prev)
		}
		prev = c
		// A class's size is in that class.
		if c2, s2 := bodyClass(size); c2 != c || s2 != size {
			t.Fatalf("class %d of %d bytes: its size is in class %d (%d)", c, size, c2, s2)
		}
		b := getBody(n)
		if len(b) != n || cap(b) != size {
			t.Fatalf("getBody(%d): len %d cap %d, want cap %d", n, len(b), cap(b), size)
		}
	}
	// A buffer getBody did not make is not kept.
	odd := make([]byte, 5000)
	for range 20 {
		putBody(odd)
		if b := getBody(5000); unsafe.SliceData(b) == unsafe.SliceData(odd) {
			t.Fatal("a buffer of no class size was handed out")
		}
	}
}

// enqueueBody queues a request of body (from getBody) on r, as readAndSplit
// makes it.
func enqueueBody(t *testing.T, r *Receiver, id uint64, body []byte) *Ack {
	t.Helper()
	out := splitOut{tag: id}
	out.spans = make([]span, 0, bytes.Count(body, []byte{'\n'})+1)
	if err := split(body, kindNDJSON, &out); err != nil {
		t.Fatal(err)
	}
	a := newAck(id, &out, nil)
	a.buf = body
	if err := r.Enqueue(a); err != nil {
		t.Fatal(err)
	}
	return a
}

// handedOut reports whether getBody hands out buf within tries calls (the
// pool may drop a buffer: under the race detector it drops some on
// purpose).
func handedOut(buf []byte, tries int) bool {
	for range tries {
		b := getBody(len(buf))
		if unsafe.SliceData(b) == unsafe.SliceData(buf) {
			return true
		}
	}
	return false
}

// TestBodyBackOnlyWhenCommitted: a request's buffer is handed out again
// after its records were committed, never after it failed (its records
// may still be in a batch in flight).
func TestBodyBackOnlyWhenCommitted(t *testing.T) {
	body := []byte(`{"a":1}` + "\n" + `{"b":2}` + "\n")
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20})
	ok := false
	for i := range 20 { // the pool may drop a buffer: try a few
		buf := getBody(len(body))
		copy(buf, body)
		a := enqueueBody(t, r, uint64(2*i+1), buf)
		b, err := r.RecvLimited(t.Context(), engine.RecvLimits{MaxRecords: 1 << 20})
		if err != nil || len(b.Records) != 2 || len(b.Tokens) != 1 || b.Tokens[0] != a {
			t.Fatalf("received %d records, %d tokens, %v", len(b.Records), len(b.Tokens), err)
		}
		if err := r.Commit(t.Context(), b.Tokens); err != nil {
			t.Fatal(err)
		}
		if err := <-a.done; err != nil {
			t.Fatal(err)
		}
		if handedOut(buf, 1) {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("a committed request's buffer was never handed out again")
	}

	// Failed: received (in a batch in flight) or still queued.
	for i := range 20 {
		buf := getBody(len(body))
		copy(buf, body)
		a := enqueueBody(t, r, uint64(1000+i), buf)
		if i%2 == 0 {
			if _, err := r.RecvLimited(t.Context(), engine.RecvLimits{MaxRecords: 1 << 20}); err != nil {
				t.Fatal(err)
			}
		}
		r.FailAll(ErrShuttingDown)
		if err := <-a.done; err == nil {
			t.Fatal("resolved without error")
		}
		if handedOut(buf, 20) {
			t.Fatalf("request %d: a failed request's buffer was handed out again", i)
		}
		// A commit after the failure does not give it back either.
		if err := r.Commit(t.Context(), []*Ack{a}); err != nil {
			t.Fatal(err)
		}
		if handedOut(buf, 20) {
			t.Fatalf("request %d: a failed request's buffer was handed out after a late commit", i)
		}
	}
}
