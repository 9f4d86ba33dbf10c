package gateway

import (
	"context"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/wasmhost"
)

// pipelineName is the WASM host pipeline of a tenant ("" = default).
func pipelineName(tenant string) string {
	if tenant == "" {
		return wasmhost.DefaultPipeline
	}
	return tenant
}

// tenantProcessor runs each record through its tenant's pipeline: records
// of one request are consecutive, so the batch is cut into runs by tenant.
type tenantProcessor struct {
	host   *wasmhost.Host
	recv   *Receiver
	single bool // no tenants: everything goes through the default pipeline
}

var _ engine.Processor = (*tenantProcessor)(nil)

// Process implements engine.Processor.
func (p *tenantProcessor) Process(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	if p.single {
		return p.host.Pipeline(wasmhost.DefaultPipeline).Process(ctx, recs, dlq)
	}
	var out []engine.Record
	for i := 0; i < len(recs); {
		name := p.tenantOf(recs[i].Tag)
		j := i + 1
		for j < len(recs) && (recs[j].Tag == recs[i].Tag || p.tenantOf(recs[j].Tag) == name) {
			j++
		}
		res, d, err := p.host.Pipeline(pipelineName(name)).Process(ctx, recs[i:j:j], dlq)
		if err != nil {
			return nil, d, err
		}
		dlq = d
		out = append(out, res...)
		i = j
	}
	return out, dlq, nil
}

func (p *tenantProcessor) tenantOf(tag uint64) string {
	if a := p.recv.lookup(tag); a != nil {
		return a.tenant
	}
	return ""
}
