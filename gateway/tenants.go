package gateway

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/wasmhost"
)

// defaultTenantName names the default tenant (the keys of api_keys, or
// everyone with open ingest) where a tenant needs a name: metrics labels
// and the sluice-tenant header. It is also its pipeline's name
// (wasmhost.DefaultPipeline), so no tenant may take it.
const defaultTenantName = wasmhost.DefaultPipeline

// pipelineName is the WASM host pipeline of a tenant ("" = default).
func pipelineName(tenant string) string {
	if tenant == "" {
		return wasmhost.DefaultPipeline
	}
	return tenant
}

// tenantProcessor runs each record through its tenant's pipeline: records
// of one request are consecutive, so the batch is cut into runs by tenant.
//
// A tenant's pipeline that is unavailable (a transform of it is not
// loaded) fails closed, for that tenant alone: the requests of its records
// are answered 503 with the host's reason at once (*PipelineError), their
// records and their inbound dead letters leave the batch (nothing of them is
// delivered, not even untransformed), and the other tenants' records go on.
type tenantProcessor struct {
	host   *wasmhost.Host
	recv   *Receiver
	single bool // no tenants: everything goes through the default pipeline
	// pipes are the tenants' pipeline handles (stable, see wasmhost.Host.Pipeline);
	// a tenant missing from it is looked up on the host.
	pipes map[string]*wasmhost.Pipeline
}

var _ engine.Processor = (*tenantProcessor)(nil)

// pipeline returns tenant's pipeline.
func (p *tenantProcessor) pipeline(tenant string) *wasmhost.Pipeline {
	if pl := p.pipes[tenant]; pl != nil {
		return pl
	}
	return p.host.Pipeline(pipelineName(tenant))
}

// Process implements engine.Processor.
func (p *tenantProcessor) Process(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	if p.single {
		out, d, err := p.pipeline("").Process(ctx, recs, dlq)
		if ue, ok := unavailable(err); ok {
			failed := p.failRun(recs, ue, nil)
			return nil, dropDeadLetters(dlq, failed), nil
		}
		return out, d, err
	}
	var out []engine.Record
	var failed map[uint64]bool
	for i := 0; i < len(recs); {
		name := p.tenantOf(recs[i].Tag)
		j := i + 1
		for j < len(recs) && (recs[j].Tag == recs[i].Tag || p.tenantOf(recs[j].Tag) == name) {
			j++
		}
		res, d, err := p.pipeline(name).Process(ctx, recs[i:j:j], dlq)
		if ue, ok := unavailable(err); ok {
			failed = p.failRun(recs[i:j], ue, failed)
			i = j
			continue
		}
		if err != nil {
			return nil, d, err
		}
		dlq = d
		out = append(out, res...)
		i = j
	}
	return out, dropDeadLetters(dlq, failed), nil
}

// unavailable reports whether err is an unavailable pipeline's.
func unavailable(err error) (*wasmhost.UnavailableError, bool) {
	var ue *wasmhost.UnavailableError
	return ue, err != nil && errors.As(err, &ue)
}

// failRun answers 503 to the requests of recs, whose pipeline is
// unavailable, and adds their ids to failed (returned, made when nil).
func (p *tenantProcessor) failRun(recs []engine.Record, ue *wasmhost.UnavailableError, failed map[uint64]bool) map[uint64]bool {
	if failed == nil {
		failed = map[uint64]bool{}
	}
	err := &PipelineError{Err: ue}
	for i := range recs {
		tag := recs[i].Tag
		if failed[tag] {
			continue
		}
		failed[tag] = true
		if a := p.recv.lookup(tag); a != nil {
			a.resolve(err)
		}
	}
	return failed
}

// dropDeadLetters removes the dead letters of the failed requests from dlq:
// a request answered 503 had nothing accepted.
func dropDeadLetters(dlq []engine.DLQEntry, failed map[uint64]bool) []engine.DLQEntry {
	if len(failed) == 0 {
		return dlq
	}
	kept := dlq[:0]
	for _, e := range dlq {
		if !failed[e.Record.Tag] {
			kept = append(kept, e)
		}
	}
	clear(dlq[len(kept):])
	return kept
}

func (p *tenantProcessor) tenantOf(tag uint64) string {
	if a := p.recv.lookup(tag); a != nil {
		return a.tenant
	}
	return ""
}
