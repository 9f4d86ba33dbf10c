package load

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// AdminSample is one poll of the sluice admin endpoint GET /admin/budget.
type AdminSample struct {
	// T is the time of the poll in seconds since the start of the run.
	T float64 `json:"t"`
	// ByteBudget is the governor's current byte budget in bytes.
	ByteBudget int64 `json:"byte_budget"`
	// RecordCap is the record cap of one receive.
	RecordCap int64 `json:"record_cap"`
	// Pressure is the unified pressure level in [0, 1].
	Pressure float64 `json:"pressure"`
	// Latched reports the pressure latch (the gate holds while it is set).
	Latched bool `json:"latched"`
	// Gate is the inbound gate's state: "open" or "held".
	Gate string `json:"gate"`
	// Rejections is the gate's rejection counter.
	Rejections int64 `json:"rejections"`
	// Error is set when the poll failed; the other fields are then zero.
	Error string `json:"error,omitempty"`
}

// budgetDoc is the part of the /admin/budget document the poller reads.
type budgetDoc struct {
	ByteBudget int64 `json:"byte_budget"`
	RecordCap  int64 `json:"record_cap"`
	Pressure   struct {
		Level   float64 `json:"level"`
		Latched bool    `json:"latched"`
	} `json:"pressure"`
	Gate struct {
		State      string `json:"state"`
		Rejections int64  `json:"rejections"`
	} `json:"gate"`
}

// adminPoller polls GET /admin/budget periodically on its own goroutine.
type adminPoller struct {
	done    chan struct{}
	wg      sync.WaitGroup
	samples []AdminSample
}

func startAdminPoller(adminURL, token string, insecure bool, every time.Duration, start time.Time) *adminPoller {
	p := &adminPoller{done: make(chan struct{})}
	uri := strings.TrimRight(adminURL, "/")
	if !strings.HasSuffix(uri, "/admin/budget") {
		uri += "/admin/budget"
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c := &fasthttp.Client{Name: "sluice-load", MaxConnsPerHost: 2}
		if insecure {
			c.TLSConfig = &tls.Config{InsecureSkipVerify: true}
		}
		defer c.CloseIdleConnections()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			p.samples = append(p.samples, pollBudget(c, uri, token, start))
			select {
			case <-p.done:
				return
			case <-tk.C:
			}
		}
	}()
	return p
}

// stop ends polling (after a last poll in progress) and returns the samples.
func (p *adminPoller) stop() []AdminSample {
	close(p.done)
	p.wg.Wait()
	return p.samples
}

func pollBudget(c *fasthttp.Client, uri, token string, start time.Time) AdminSample {
	s := AdminSample{T: time.Since(start).Seconds()}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if err := c.DoTimeout(req, resp, 900*time.Millisecond); err != nil {
		s.Error = err.Error()
		return s
	}
	if sc := resp.StatusCode(); sc != fasthttp.StatusOK {
		s.Error = fmt.Sprintf("status %d: %.200s", sc, bytes.TrimSpace(resp.Body()))
		return s
	}
	var d budgetDoc
	if err := json.Unmarshal(resp.Body(), &d); err != nil {
		s.Error = "decode budget: " + err.Error()
		return s
	}
	s.ByteBudget, s.RecordCap = d.ByteBudget, d.RecordCap
	s.Pressure, s.Latched = d.Pressure.Level, d.Pressure.Latched
	s.Gate, s.Rejections = d.Gate.State, d.Gate.Rejections
	return s
}
