package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// DefaultPipeline is how the default pipeline (tenant "") is named in
// responses and in TransformInfo.UsedBy.
const DefaultPipeline = "default"

// pipelineBody is the JSON of GET/PUT /admin/pipeline.
type pipelineBody struct {
	Tenant     string   `json:"tenant"`
	Transforms []string `json:"transforms"`
	Tenants    []string `json:"tenants"`
	// Available is false while a transform of the chain is not loaded: the
	// tenant's requests get 503 and Error says why.
	Available bool   `json:"available"`
	Error     string `json:"error,omitempty"`
}

// pipelineSwap is the JSON answer of PUT /admin/pipeline.
type pipelineSwap struct {
	Tenant     string   `json:"tenant"`
	Transforms []string `json:"transforms"`
	Previous   []string `json:"previous"`
}

// putPipelineRequest is the body of PUT /admin/pipeline.
type putPipelineRequest struct {
	Transforms *[]string `json:"transforms"`
}

// tenant returns the ?tenant= query argument ("" = default), checked
// against the configured tenants.
func (h *Handler) tenant(ctx *fasthttp.RequestCtx) (string, error) {
	t := string(ctx.QueryArgs().Peek("tenant"))
	if t == "" || t == DefaultPipeline {
		return "", nil
	}
	for _, known := range h.deps.Pipelines.Tenants() {
		if known == t {
			return t, nil
		}
	}
	return "", fmt.Errorf("tenant %q: %w (configured tenants: %s)", t, ErrNotFound, strings.Join(h.deps.Pipelines.Tenants(), ", "))
}

func tenantLabel(t string) string {
	if t == "" {
		return DefaultPipeline
	}
	return t
}

func (h *Handler) getPipeline(ctx *fasthttp.RequestCtx, _ Params) error {
	t, err := h.tenant(ctx)
	if err != nil {
		return err
	}
	chain, err := h.deps.Pipelines.Pipeline(t)
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", tenantLabel(t), err)
	}
	if chain == nil {
		chain = []string{}
	}
	tenants := h.deps.Pipelines.Tenants()
	if tenants == nil {
		tenants = []string{}
	}
	body := pipelineBody{Tenant: tenantLabel(t), Transforms: chain, Tenants: tenants, Available: true}
	if pa, ok := h.deps.Pipelines.(PipelineAvailability); ok {
		if err := pa.PipelineErr(t); err != nil {
			body.Available, body.Error = false, err.Error()
		}
	}
	writeJSON(ctx, http.StatusOK, body)
	return nil
}

func (h *Handler) putPipeline(ctx *fasthttp.RequestCtx, _ Params) error {
	t, err := h.tenant(ctx)
	if err != nil {
		return err
	}
	body, err := h.body(ctx, h.cfg.MaxSample, "pipeline body")
	if err != nil {
		return err
	}
	var req putPipelineRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Invalidf(`pipeline body must be {"transforms":["name",...]}: %w`, err)
	}
	if req.Transforms == nil {
		return Invalidf(`pipeline body must be {"transforms":["name",...]} (use [] for pass-through)`)
	}
	chain := *req.Transforms
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range chain {
		if !ValidName(name) {
			return Invalidf("invalid transform name %q in pipeline", name)
		}
		if _, err := h.deps.Transforms.Get(c, name); err != nil {
			if errors.Is(err, ErrNotFound) {
				return Invalidf("unknown transform %q in pipeline: upload it first (PUT /admin/transforms/%s)", name, name)
			}
			return fmt.Errorf("transform %q: %w", name, err)
		}
	}
	prev, err := h.deps.Pipelines.Pipeline(t)
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", tenantLabel(t), err)
	}
	if err := h.deps.Pipelines.SetPipeline(t, chain); err != nil {
		if errors.Is(err, ErrNotFound) {
			// A transform deleted between the check and the swap.
			return &InvalidError{Reason: "pipeline " + tenantLabel(t), Err: err}
		}
		return fmt.Errorf("set pipeline %s: %w", tenantLabel(t), err)
	}
	if prev == nil {
		prev = []string{}
	}
	writeJSON(ctx, http.StatusOK, pipelineSwap{Tenant: tenantLabel(t), Transforms: chain, Previous: prev})
	return nil
}

func (h *Handler) testPipeline(ctx *fasthttp.RequestCtx, _ Params) error {
	t, err := h.tenant(ctx)
	if err != nil {
		return err
	}
	var chain []string
	if override := string(ctx.QueryArgs().Peek("transforms")); override != "" {
		// ?transforms=a,b tries a chain before installing it.
		chain = strings.Split(override, ",")
		for _, name := range chain {
			if !ValidName(name) {
				return Invalidf("invalid transform name %q in ?transforms=", name)
			}
		}
	} else {
		chain, err = h.deps.Pipelines.Pipeline(t)
		if err != nil {
			return fmt.Errorf("pipeline %s: %w", tenantLabel(t), err)
		}
	}
	events, err := h.samples(ctx)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), h.cfg.DryRunTimeout)
	defer cancel()
	for _, name := range chain {
		if _, err := h.deps.Transforms.Get(c, name); err != nil {
			return fmt.Errorf("transform %q: %w", name, err)
		}
	}
	if chain == nil {
		chain = []string{}
	}
	return h.dryRun(ctx, c, chain, events)
}
