package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/wasmhost"
)

// TestTenantProcessorFailsClosed: records already queued for a tenant whose
// pipeline is unavailable are not delivered (not even untransformed): their
// requests are answered 503 naming the transform at once, their inbound
// dead letters are dropped too, and the other tenant's records of the same
// batch go on; a request split across batches loses its later records too.
func TestTenantProcessorFailsClosed(t *testing.T) {
	ctx := context.Background()
	h, err := wasmhost.New(ctx, wasmhost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if err := h.SetPipelineAllowUnavailable("acme", []string{"redact"}); err != nil {
		t.Fatal(err)
	}
	recv := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20, PollTimeout: 10 * time.Millisecond})
	acme1, other, acme2 := testAck(1, 3, 10, 1), testAck(2, 2, 10, 1), testAck(3, 4, 10, 0)
	acme1.tenant, acme2.tenant = "acme", "acme"
	for _, a := range []*Ack{acme1, other, acme2} {
		if err := recv.Enqueue(a); err != nil {
			t.Fatal(err)
		}
	}
	p := &tenantProcessor{host: h, recv: recv, pipes: map[string]*wasmhost.Pipeline{
		"": h.Pipeline(wasmhost.DefaultPipeline), "acme": h.Pipeline("acme"),
	}}
	// The first batch ends inside acme2's records.
	b, err := recv.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 7})
	if err != nil || len(b.Records) != 7 || len(b.DLQ) != 2 {
		t.Fatalf("batch: %d records, %d dead letters, %v", len(b.Records), len(b.DLQ), err)
	}
	out, dlq, err := p.Process(ctx, b.Records, b.DLQ)
	if err != nil {
		t.Fatalf("Process returned %v: one tenant's pipeline must not fail the batch", err)
	}
	if len(out) != 2 || out[0].Tag != 2 || out[1].Tag != 2 {
		t.Fatalf("out: %+v; want only the other tenant's 2 records", out)
	}
	if len(dlq) != 1 || dlq[0].Record.Tag != 2 {
		t.Fatalf("dead letters: %+v; want only the other tenant's", dlq)
	}
	for _, a := range []*Ack{acme1, acme2} {
		select {
		case err := <-a.done:
			var pe *PipelineError
			if !errors.As(err, &pe) || StatusOf(err) != 503 || retryAfterOf(err, time.Second) != pipelineRetryAfter ||
				!strings.Contains(err.Error(), `transform "redact" cannot be loaded`) {
				t.Fatalf("request %d answered %v (status %d)", a.ID(), err, StatusOf(err))
			}
		default:
			t.Fatalf("request %d of the unavailable pipeline not answered", a.ID())
		}
	}
	select {
	case err := <-other.done:
		t.Fatalf("the other tenant's request was answered before its commit: %v", err)
	default:
	}
	// acme2's last record comes in the next batch: dropped as well.
	b2, err := recv.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 100})
	if err != nil || len(b2.Records) != 2 {
		t.Fatalf("second batch: %d records, %v", len(b2.Records), err)
	}
	if out, _, err := p.Process(ctx, b2.Records, b2.DLQ); err != nil || len(out) != 0 {
		t.Fatalf("second batch: %d records out, %v", len(out), err)
	}

	// The single-tenant processor fails every request of the batch.
	if err := h.SetPipelineAllowUnavailable(wasmhost.DefaultPipeline, []string{"redact"}); err != nil {
		t.Fatal(err)
	}
	single := &tenantProcessor{host: h, recv: recv, single: true}
	a := testAck(4, 2, 10, 1)
	if err := recv.Enqueue(a); err != nil {
		t.Fatal(err)
	}
	b3, _ := recv.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 100})
	out, dlq, err = single.Process(ctx, b3.Records, b3.DLQ)
	if err != nil || len(out) != 0 || len(dlq) != 0 {
		t.Fatalf("single: %d records, %d dead letters, %v", len(out), len(dlq), err)
	}
	if err := <-a.done; !errors.Is(err, ErrPipelineUnavailable) {
		t.Fatalf("single: request answered %v", err)
	}
}
