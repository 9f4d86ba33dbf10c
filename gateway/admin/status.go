package admin

import (
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// statusBody is the JSON of GET /admin/status.
type statusBody struct {
	Ready         bool       `json:"ready"`
	Reason        string     `json:"reason,omitempty"`
	Sink          sinkStatus `json:"sink"`
	Started       time.Time  `json:"started"`
	UptimeSeconds float64    `json:"uptime_seconds"`
}

type sinkStatus struct {
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// getStatus answers whether the gateway takes traffic and, when it does
// not, why; and the sink's health with the error that broke it.
func (h *Handler) getStatus(ctx *fasthttp.RequestCtx, _ Params) error {
	st := h.deps.Status
	if st == nil {
		return &hostError{err: errNoStatus, sentinel: ErrUnavailable}
	}
	out := statusBody{Ready: true, Sink: sinkStatus{Healthy: true}, Started: h.started.UTC(),
		UptimeSeconds: time.Since(h.started).Seconds()}
	if err := st.Ready(); err != nil {
		out.Ready, out.Reason = false, err.Error()
	}
	if err := st.SinkError(); err != nil {
		out.Sink = sinkStatus{Healthy: false, Error: err.Error()}
	}
	writeJSON(ctx, http.StatusOK, out)
	return nil
}
