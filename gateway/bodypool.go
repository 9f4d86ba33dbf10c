package gateway

import (
	"math/bits"
	"sync"
)

// Request bodies are the largest allocation of ingest (under load a third
// of the bytes the process allocates): each is read into a buffer that its
// records reference until the request is answered. A request whose every
// record was committed (its Ack resolved without error) gives its buffer
// back here for a later request: the batches that carried its records have
// been written and committed, so nothing reads those bytes any more. A
// request that failed leaves its buffer to the garbage collector: a record
// of it may still be in a batch in flight (a request is cut across
// batches), or held by the producer after a write gave up waiting.
//
// Buffers come in size classes four to a power of two (at most 25 % over
// the body), from 4 KiB to 1 MiB; larger bodies are allocated each time.
// The classes are sync.Pools: what is not reused is let go at the next
// collections, so an idle gateway holds none.

const (
	minBodyShift = 12 // the smallest class: 4 KiB
	maxBodyShift = 20 // the largest: 1 MiB
	bodySteps    = 4  // classes per power of two
	bodyClasses  = (maxBodyShift-minBodyShift)*bodySteps + 1
)

var bodyPools [bodyClasses]sync.Pool // *[]byte, cap exactly bodyClassSize

// bodyClass returns the class of a body of n bytes (≥ bodyClasses: none)
// and its size.
func bodyClass(n int) (int, int) {
	if n <= 1<<minBodyShift {
		return 0, 1 << minBodyShift
	}
	k := bits.Len(uint(n - 1)) // 2^(k-1) < n ≤ 2^k
	if k > maxBodyShift {
		return bodyClasses, n
	}
	base, step := 1<<(k-1), 1<<(k-1)/bodySteps
	q := (n - base + step - 1) / step // 1 … bodySteps
	return (k-1-minBodyShift)*bodySteps + q, base + q*step
}

// getBody returns a buffer of length n for a request body, from the pool
// when one of its class is there.
func getBody(n int) []byte {
	c, size := bodyClass(n)
	if c >= bodyClasses {
		return make([]byte, n)
	}
	if p, _ := bodyPools[c].Get().(*[]byte); p != nil {
		return (*p)[:n]
	}
	return make([]byte, n, size)
}

// putBody gives b back to its class. Nothing may reference b's bytes any
// more. A buffer that getBody did not make (its capacity is not a class
// size) is let go.
func putBody(b []byte) {
	c, size := bodyClass(cap(b))
	if c >= bodyClasses || size != cap(b) {
		return
	}
	b = b[:0]
	bodyPools[c].Put(&b)
}
