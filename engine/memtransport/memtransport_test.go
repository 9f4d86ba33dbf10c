package memtransport_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/memtransport"
)

func newT(tb testing.TB, poll time.Duration) *memtransport.Transport {
	tb.Helper()
	m, err := memtransport.New(memtransport.Config{PollTimeout: poll})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	return m
}

func TestConfigValidate(t *testing.T) {
	if _, err := memtransport.New(memtransport.Config{PollTimeout: -1}); err == nil {
		t.Fatal("negative poll timeout accepted")
	}
	if err := (memtransport.Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRecvTimesOutWithEmptyBatch(t *testing.T) {
	m := newT(t, 5*time.Millisecond)
	start := time.Now()
	b, err := m.Recv(context.Background(), 10)
	if err != nil || len(b.Records) != 0 || len(b.Tokens) != 0 {
		t.Fatalf("Recv on empty = %+v, %v; want an empty batch", b, err)
	}
	if time.Since(start) < 5*time.Millisecond {
		t.Fatal("Recv returned before the poll timeout")
	}
}

func TestOffsetsLimitsAndWatermark(t *testing.T) {
	m := newT(t, time.Millisecond)
	first, err := m.InjectValues(`{"a":1}`, `{"a":2}`, `{"a":3}`, `{"a":4}`)
	if err != nil || first != 0 {
		t.Fatalf("first offset %d, %v", first, err)
	}
	b, err := m.Recv(context.Background(), 3)
	if err != nil || len(b.Records) != 3 || b.Tokens[0] != 0 || b.Tokens[2] != 2 {
		t.Fatalf("Recv(3) = %+v, %v", b, err)
	}
	if m.Committed() != -1 {
		t.Fatal("watermark before any commit must be -1")
	}
	if err := m.Commit(context.Background(), b.Tokens); err != nil || m.Committed() != 2 {
		t.Fatalf("commit: %v, watermark %d", err, m.Committed())
	}
	if err := m.Commit(context.Background(), []uint64{1}); err != nil || m.Committed() != 2 {
		t.Fatalf("a lower commit moved the watermark back to %d", m.Committed())
	}
	if m.Commits() != 2 {
		t.Fatalf("commits = %d", m.Commits())
	}
	// Byte cap with a floor of one record.
	if _, err := m.Inject(engine.Record{Value: make([]byte, 100)}, engine.Record{Value: make([]byte, 10)}); err != nil {
		t.Fatal(err)
	}
	b, _ = m.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 10, MaxBytes: 5})
	if len(b.Records) != 1 || b.Tokens[0] != 3 {
		t.Fatalf("byte cap 5 = %d records (tokens %v); want the floor of one", len(b.Records), b.Tokens)
	}
	b, _ = m.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 10, MaxBytes: 105})
	if len(b.Records) != 1 || len(b.Records[0].Value) != 100 {
		t.Fatalf("byte cap 105 = %d records; want 1 (100 + 10 > 105)", len(b.Records))
	}
	b, _ = m.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 0})
	if len(b.Records) != 1 || b.Tokens[0] != 5 {
		t.Fatalf("MaxRecords 0 = %d records; want a floor of one", len(b.Records))
	}
	boom := errors.New("broker down")
	m.SetCommitError(boom)
	if err := m.Commit(context.Background(), []uint64{5}); !errors.Is(err, boom) || m.Committed() != 2 {
		t.Fatalf("failing commit: %v, watermark %d", err, m.Committed())
	}
	m.SetCommitError(nil)
	if err := m.Commit(context.Background(), []uint64{5}); err != nil || m.Committed() != 5 {
		t.Fatalf("restored commit: %v, watermark %d", err, m.Committed())
	}
}

func TestCloseDrainsThenReportsSourceClosed(t *testing.T) {
	m := newT(t, time.Hour) // closing must wake a waiting receiver
	done := make(chan error, 1)
	go func() {
		_, err := m.Recv(context.Background(), 1)
		done <- err
	}()
	time.Sleep(5 * time.Millisecond)
	m.Close()
	select {
	case err := <-done:
		if !errors.Is(err, engine.ErrSourceClosed) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the receiver")
	}

	m = newT(t, time.Hour)
	if _, err := m.InjectValues(`1`, `2`); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close() // idempotent
	if _, err := m.InjectValues(`3`); !errors.Is(err, memtransport.ErrClosed) {
		t.Fatalf("Inject after Close: %v", err)
	}
	if _, err := m.InjectDeadLetters(engine.DLQEntry{}); !errors.Is(err, memtransport.ErrClosed) {
		t.Fatalf("InjectDeadLetters after Close: %v", err)
	}
	b, err := m.Recv(context.Background(), 10)
	if err != nil || len(b.Records) != 2 {
		t.Fatalf("queued records must drain after Close: %+v, %v", b, err)
	}
	if _, err := m.Recv(context.Background(), 10); !errors.Is(err, engine.ErrSourceClosed) {
		t.Fatalf("drained: %v", err)
	}
}

func TestRecvHonoursContext(t *testing.T) {
	m := newT(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := m.Recv(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestDeadLettersTakeOffsets(t *testing.T) {
	m := newT(t, time.Millisecond)
	if _, err := m.InjectValues(`{}`); err != nil {
		t.Fatal(err)
	}
	if off, err := m.InjectDeadLetters(engine.DLQEntry{Reason: "bad"}); err != nil || off != 1 {
		t.Fatalf("dead letter offset %d, %v", off, err)
	}
	b, _ := m.Recv(context.Background(), 10)
	if len(b.Records) != 1 || len(b.DLQ) != 1 || len(b.Tokens) != 2 || b.DLQ[0].Reason != "bad" {
		t.Fatalf("batch = %+v", b)
	}
	if m.Pending() != 0 {
		t.Fatal("pending after receive")
	}
}

func TestSinkCopiesAndFails(t *testing.T) {
	m := newT(t, time.Millisecond)
	v := []byte(`{"a":1}`)
	rec := engine.Record{Value: v, Key: []byte("k"), Headers: []engine.Header{{Key: "h", Value: []byte("x")}}}
	if err := m.Send(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	v[2] = 'Z'
	rec.Headers[0].Value[0] = 'Y'
	sent := m.Sent()
	if string(sent[0].Value) != `{"a":1}` || string(sent[0].Headers[0].Value) != "x" || string(sent[0].Key) != "k" {
		t.Fatalf("Send kept a reference to the caller's bytes: %+v", sent[0])
	}
	if err := m.WriteDLQ(context.Background(), []engine.DLQEntry{{Record: rec, Reason: "r"}}); err != nil {
		t.Fatal(err)
	}
	if dl := m.DeadLetters(); len(dl) != 1 || dl[0].Reason != "r" {
		t.Fatalf("dead letters %+v", dl)
	}
	boom := errors.New("down")
	m.SetSendError(boom)
	if err := m.Write(context.Background(), []engine.Record{rec}); !errors.Is(err, boom) {
		t.Fatalf("Write: %v", err)
	}
	if err := m.WriteDLQ(context.Background(), nil); !errors.Is(err, boom) {
		t.Fatalf("WriteDLQ: %v", err)
	}
	m.SetSendError(nil)
	if err := m.SendBatch(context.Background(), []engine.Record{rec, rec}); err != nil || len(m.Sent()) != 3 {
		t.Fatalf("SendBatch: %v, sent %d", err, len(m.Sent()))
	}
}

// Hammer: concurrent injectors and two concurrent receivers; every offset
// is delivered exactly once and the watermark ends at the last offset.
func TestConcurrentInjectAndRecv(t *testing.T) {
	const writers, perWriter = 4, 500
	m := newT(t, time.Millisecond)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWriter {
				if _, err := m.InjectValues(`{}`); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make([]int, writers*perWriter)
	var mu sync.Mutex
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				b, err := m.Recv(context.Background(), 37)
				if errors.Is(err, engine.ErrSourceClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, tok := range b.Tokens {
					seen[tok]++
				}
				mu.Unlock()
				if err := m.Commit(context.Background(), b.Tokens); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	m.Close()
	rg.Wait()
	for off, n := range seen {
		if n != 1 {
			t.Fatalf("offset %d delivered %d times", off, n)
		}
	}
	if m.Committed() != writers*perWriter-1 {
		t.Fatalf("watermark %d", m.Committed())
	}
}
