package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// uploadTimeout bounds compiling and storing one module (a Go guest
// compiles in about 0.5 s on 2 cores).
const uploadTimeout = 2 * time.Minute

// ValidName reports whether name is a valid transform name:
// [a-z0-9][a-z0-9_-]{0,62}.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// transformName returns the {name} parameter, validated.
func transformName(p Params) (string, error) {
	name := p.Get("name")
	if !ValidName(name) {
		return "", Invalidf("invalid transform name %q: use 1–63 characters of [a-z0-9_-], starting with a letter or digit", name)
	}
	return name, nil
}

// transformList is the body of GET /admin/transforms.
type transformList struct {
	Transforms []TransformInfo `json:"transforms"`
}

func (h *Handler) listTransforms(ctx *fasthttp.RequestCtx, _ Params) error {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := h.deps.Transforms.List(c)
	if err != nil {
		return fmt.Errorf("list transforms: %w", err)
	}
	if list == nil {
		list = []TransformInfo{}
	}
	for i := range list {
		normalizeInfo(&list[i])
	}
	writeJSON(ctx, http.StatusOK, transformList{Transforms: list})
	return nil
}

func (h *Handler) getTransform(ctx *fasthttp.RequestCtx, p Params) error {
	name, err := transformName(p)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := h.deps.Transforms.Get(c, name)
	if err != nil {
		return fmt.Errorf("transform %q: %w", name, err)
	}
	normalizeInfo(&info)
	writeJSON(ctx, http.StatusOK, info)
	return nil
}

func (h *Handler) putTransform(ctx *fasthttp.RequestCtx, p Params) error {
	name, err := transformName(p)
	if err != nil {
		return err
	}
	module, err := h.body(ctx, h.cfg.MaxUpload, "module")
	if err != nil {
		return err
	}
	if len(module) == 0 {
		return Invalidf("empty body: send the .wasm module bytes (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)")
	}
	c, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	prev, prevErr := h.deps.Transforms.Get(c, name)
	info, err := h.deps.Transforms.Put(c, name, module)
	if err != nil {
		return fmt.Errorf("transform %q: %w", name, err)
	}
	normalizeInfo(&info)
	status := http.StatusCreated
	if prevErr == nil && prev.Version == info.Version && prev.Digest == info.Digest {
		// The current bytes again: nothing was created.
		status = http.StatusOK
	}
	writeJSON(ctx, status, info)
	return nil
}

func (h *Handler) deleteTransform(ctx *fasthttp.RequestCtx, p Params) error {
	name, err := transformName(p)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.deps.Transforms.Delete(c, name); err != nil {
		return fmt.Errorf("delete transform %q: %w", name, err)
	}
	ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

func (h *Handler) rollbackTransform(ctx *fasthttp.RequestCtx, p Params) error {
	name, err := transformName(p)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	info, err := h.deps.Transforms.Rollback(c, name)
	if err != nil {
		return fmt.Errorf("roll back transform %q: %w", name, err)
	}
	normalizeInfo(&info)
	writeJSON(ctx, http.StatusOK, info)
	return nil
}

func (h *Handler) testTransform(ctx *fasthttp.RequestCtx, p Params) error {
	name, err := transformName(p)
	if err != nil {
		return err
	}
	events, err := h.samples(ctx)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), h.cfg.DryRunTimeout)
	defer cancel()
	if _, err := h.deps.Transforms.Get(c, name); err != nil {
		return fmt.Errorf("transform %q: %w", name, err)
	}
	return h.dryRun(ctx, c, []string{name}, events)
}

// dryRun runs events through chain and writes the result.
func (h *Handler) dryRun(ctx *fasthttp.RequestCtx, c context.Context, chain []string, events [][]byte) error {
	select {
	case h.dryRuns <- struct{}{}:
		defer func() { <-h.dryRuns }()
	case <-c.Done():
		return APIError{HTTPStatus: http.StatusServiceUnavailable, Err: c.Err(),
			Message: fmt.Sprintf("another dry run held the dry-run slot for %v (one runs at a time); retry", h.cfg.DryRunTimeout)}
	}
	res, err := h.deps.Transforms.DryRun(c, chain, events)
	if err != nil {
		return fmt.Errorf("dry-run %v: %w", chain, err)
	}
	if res.Transforms == nil {
		res.Transforms = chain
	}
	writeJSON(ctx, http.StatusOK, encodeDryRun(res, len(events)))
	return nil
}

// normalizeInfo makes nil slices encode as [] rather than null.
func normalizeInfo(info *TransformInfo) {
	if info.Exports == nil {
		info.Exports = []string{}
	}
	if info.UsedBy == nil {
		info.UsedBy = []string{}
	}
}

// body returns a copy of the (decompressed) request body, or ErrTooLarge
// when it is over limit bytes.
func (h *Handler) body(ctx *fasthttp.RequestCtx, limit int64, what string) ([]byte, error) {
	tooLarge := func() error {
		return fmt.Errorf("%w: the %s is capped at %d bytes", ErrTooLarge, what, limit)
	}
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > limit {
		return nil, tooLarge()
	}
	var b []byte
	if len(ctx.Request.Header.ContentEncoding()) > 0 {
		var err error
		b, err = ctx.Request.BodyUncompressedWithLimit(int(limit))
		if err != nil {
			if errorsIsBodyTooLarge(err) {
				return nil, tooLarge()
			}
			return nil, Invalidf("decode Content-Encoding %q: %w", ctx.Request.Header.ContentEncoding(), err)
		}
	} else {
		b = ctx.PostBody()
	}
	if int64(len(b)) > limit {
		return nil, tooLarge()
	}
	return append([]byte(nil), b...), nil
}
