package load

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// SVG layout, in pixels.
const (
	plotWidth   = 960
	plotLeft    = 80  // room for y tick labels
	plotRight   = 150 // room for the legend
	plotTop     = 50
	panelHeight = 170
	panelGap    = 60
)

// series is one line of a panel.
type series struct {
	name  string // data-series attribute and legend label
	color string
	width float64 // stroke width
	dash  string  // stroke-dasharray; "" for a solid line
	xs    []float64
	ys    []float64
}

// span is a shaded x range of a panel (the gate held).
type span struct{ from, to float64 }

// panel is one chart of the plot, sharing the x axis (seconds) with the others.
type panel struct {
	id     string
	title  string
	note   string // shown under the title (e.g. failed polls)
	unit   string
	yMax   float64 // 0: from the data
	series []series
	spans  []span
	spanID string
}

// WriteSVG writes a chart of the run: requests/s by outcome, acked events/s
// and latency quantiles per second, and — when the run polled the admin
// endpoint — the byte budget and the pressure level with the gate's held
// periods shaded. Every line is a <polyline data-series="NAME">; gate-held
// periods are <rect> elements inside <g data-series="gate_held">.
func (rep *Report) WriteSVG(w io.Writer) error {
	var xs, lx, req, ok, nonOK, errs, ev, p50, p90, p99, mx []float64
	for _, s := range rep.Timeline {
		// A second is plotted at its middle. The last one may be partial:
		// its rates are scaled by its length, unless it is the short tail
		// of answers to requests sent before the end, which would show as a
		// spike.
		width := min(1, rep.DurationSeconds-float64(s.T))
		if s.Requests > 0 {
			lx = append(lx, float64(s.T)+max(width, 0)/2)
			p50, p90, p99, mx = append(p50, s.P50), append(p90, s.P90), append(p99, s.P99), append(mx, s.Max)
		}
		if width < 0.5 {
			continue
		}
		xs = append(xs, float64(s.T)+width/2)
		req = append(req, float64(s.Requests)/width)
		ok = append(ok, float64(s.OK)/width)
		nonOK = append(nonOK, float64(s.NonOK)/width)
		errs = append(errs, float64(s.Errors)/width)
		ev = append(ev, float64(s.EventsAcked)/width)
	}
	panels := []panel{
		{id: "throughput", title: "Requests per second", unit: "req/s", series: []series{
			{"requests", "#9ecae1", 4, "", xs, req}, {"ok", "#2ca02c", 1.5, "", xs, ok},
			{"non_ok", "#ff7f0e", 1.5, "", xs, nonOK}, {"errors", "#d62728", 1.5, "", xs, errs},
		}},
		{id: "events", title: "Events acknowledged per second", unit: "events/s", series: []series{
			{"events", "#9467bd", 1.5, "", xs, ev},
		}},
		{id: "latency", title: "Latency (ms, by completion second)", unit: "ms", series: []series{
			{"p50", "#2ca02c", 1.5, "", lx, p50}, {"p90", "#1f77b4", 1.5, "", lx, p90},
			{"p99", "#ff7f0e", 1.5, "", lx, p99}, {"max", "#d62728", 1.5, "", lx, mx},
		}},
	}
	if len(rep.Admin) > 0 {
		var ax, budget, pressure, latched []float64
		var spans []span
		var heldFrom = -1.0
		var failed int
		var firstErr string
		for _, s := range rep.Admin {
			if s.Error != "" {
				if failed++; firstErr == "" {
					firstErr = s.Error
				}
				continue
			}
			ax = append(ax, s.T)
			budget = append(budget, float64(s.ByteBudget)/(1<<20))
			pressure = append(pressure, s.Pressure)
			l := 0.0
			if s.Latched {
				l = 1
			}
			latched = append(latched, l)
			switch {
			case s.Gate == "held" && heldFrom < 0:
				heldFrom = s.T
			case s.Gate != "held" && heldFrom >= 0:
				spans = append(spans, span{heldFrom, s.T})
				heldFrom = -1
			}
		}
		if heldFrom >= 0 {
			spans = append(spans, span{heldFrom, max(rep.DurationSeconds, heldFrom+1)})
		}
		panels = append(panels,
			panel{id: "budget", title: "Byte budget (MiB)", note: pollNote(failed, len(rep.Admin), firstErr), unit: "MiB", series: []series{
				{"byte_budget", "#8c564b", 1.5, "", ax, budget},
			}},
			panel{id: "pressure", title: "Pressure level, latch (1 = latched); shaded: gate held", unit: "level", yMax: 1.2,
				series: []series{{"pressure", "#d62728", 1.5, "", ax, pressure}, {"latched", "#7f7f7f", 1.5, "5 3", ax, latched}},
				spans:  spans, spanID: "gate_held"},
		)
	}
	xMax := max(rep.DurationSeconds, 1)
	height := plotTop + len(panels)*(panelHeight+panelGap)

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		plotWidth, height, plotWidth, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("sluice load: %s — %d connections, %d events/request, %.1f s", rep.URL,
		rep.Config.Connections, rep.Config.EventsPerRequest, rep.DurationSeconds)
	if rep.Config.Rate > 0 {
		title += fmt.Sprintf(", %g req/s target", rep.Config.Rate)
	}
	fmt.Fprintf(bw, `<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", plotLeft, esc(title))
	for i, p := range panels {
		top := float64(plotTop + i*(panelHeight+panelGap) + 20)
		writePanel(bw, p, top, xMax)
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func writePanel(w *bufio.Writer, p panel, top, xMax float64) {
	left, right := float64(plotLeft), float64(plotWidth-plotRight)
	bottom := top + panelHeight
	yMax := p.yMax
	if yMax == 0 {
		for _, s := range p.series {
			for _, y := range s.ys {
				yMax = max(yMax, y)
			}
		}
		yMax = niceCeil(yMax)
	}
	px := func(x float64) float64 { return left + (right-left)*x/xMax }
	py := func(y float64) float64 { return bottom - (bottom-top)*min(y, yMax)/yMax }

	fmt.Fprintf(w, `<g id="panel-%s">`+"\n", p.id)
	fmt.Fprintf(w, `<text x="%g" y="%g" font-size="12" font-weight="bold">%s</text>`+"\n", left, top-8, esc(p.title))
	if p.note != "" {
		fmt.Fprintf(w, `<text x="%g" y="%g" fill="#d62728">%s</text>`+"\n", left+8, top+16, esc(p.note))
	}
	if p.spanID != "" {
		fmt.Fprintf(w, `<g data-series="%s" fill="#d62728" fill-opacity="0.15">`+"\n", p.spanID)
		for _, s := range p.spans {
			x0, x1 := px(max(s.from, 0)), px(min(s.to, xMax))
			fmt.Fprintf(w, `<rect x="%.1f" y="%g" width="%.1f" height="%d"/>`+"\n", x0, top, max(x1-x0, 1), panelHeight)
		}
		w.WriteString("</g>\n")
	}
	// Axes, grid and ticks.
	fmt.Fprintf(w, `<rect x="%g" y="%g" width="%g" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, right-left, panelHeight)
	for i := 0; i <= 4; i++ {
		y := yMax * float64(i) / 4
		fmt.Fprintf(w, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`, left, py(y), right, py(y))
		fmt.Fprintf(w, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, fmtTick(y))
	}
	step := niceCeil(xMax / 10)
	for x := 0.0; x <= xMax+1e-9; x += step {
		fmt.Fprintf(w, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`, px(x), bottom+14, fmtTick(x))
	}
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="end">s</text>`+"\n", right, bottom+28)
	fmt.Fprintf(w, `<text x="%g" y="%g" transform="rotate(-90 %g %g)" text-anchor="middle">%s</text>`+"\n",
		left-60, top+panelHeight/2, left-60, top+panelHeight/2, esc(p.unit))
	// Series and legend.
	for i, s := range p.series {
		var pts strings.Builder
		for j := range s.xs {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.xs[j]), py(s.ys[j]))
		}
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
		}
		fmt.Fprintf(w, `<polyline data-series="%s" fill="none" stroke="%s" stroke-width="%g"%s points="%s"/>`+"\n",
			s.name, s.color, s.width, dash, strings.TrimSpace(pts.String()))
		ly := top + 12 + float64(i)*16
		fmt.Fprintf(w, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/>`, right+10, ly-4, right+28, ly-4, s.color)
		fmt.Fprintf(w, `<text x="%g" y="%g">%s</text>`+"\n", right+34, ly, esc(s.name))
	}
	if p.spanID != "" {
		ly := top + 12 + float64(len(p.series))*16
		fmt.Fprintf(w, `<rect x="%g" y="%g" width="18" height="10" fill="#d62728" fill-opacity="0.15"/>`, right+10, ly-9)
		fmt.Fprintf(w, `<text x="%g" y="%g">gate held</text>`+"\n", right+34, ly)
	}
	w.WriteString("</g>\n")
}

// pollNote describes failed admin polls ("" when none failed).
func pollNote(failed, total int, firstErr string) string {
	if failed == 0 {
		return ""
	}
	if len(firstErr) > 100 {
		firstErr = firstErr[:100] + "…"
	}
	return fmt.Sprintf("%d of %d /admin/budget polls failed; first: %s", failed, total, strings.TrimSpace(firstErr))
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e4)/100)
	case v >= 1e4:
		return fmt.Sprintf("%gk", math.Round(v/10)/100)
	default:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
