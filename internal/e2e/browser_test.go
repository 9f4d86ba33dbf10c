package e2e_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
)

const testPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>browser test</title></head>
<body>
<label for="name">Name</label> <input id="name">
<button id="go" type="button">Go</button>
<p id="out"></p>
<script>
const name = document.getElementById('name'), out = document.getElementById('out');
document.getElementById('go').addEventListener('click', () => { out.textContent = 'hello ' + name.value; });
name.addEventListener('keydown', e => { if (e.key === 'Enter') out.textContent = 'enter ' + name.value; });
setTimeout(() => { const d = document.createElement('div'); d.id = 'late'; d.textContent = 'late ' + location.hash; document.body.append(d); }, 300);
console.log('page loaded');
</script>
</body></html>`

// fatalTB records the first Fatal of a helper and unwinds with a panic
// the caller recovers (so a test can check how a helper fails).
type fatalTB struct {
	testing.TB
	msg string
}

type fatalUnwind struct{}

func (f *fatalTB) Fatal(args ...any) { f.msg = fmt.Sprint(args...); panic(fatalUnwind{}) }
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalUnwind{})
}

// fails runs f and returns the message of the Fatal it ended with ("" if
// none).
func (f *fatalTB) fails(fn func()) (msg string) {
	f.msg = ""
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalUnwind); !ok {
				panic(r)
			}
			msg = f.msg
		}
	}()
	fn()
	return ""
}

func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, testPage)
	}))
	t.Cleanup(srv.Close)
	artifacts := t.TempDir()
	t.Setenv(e2e.ArtifactsEnv, artifacts)

	start := time.Now()
	b := e2e.StartBrowser(t, e2e.BrowserOptions{Width: 800, Height: 600})
	t.Logf("browser up in %v", time.Since(start).Round(time.Millisecond))

	b.Open(srv.URL + "/#x=1")
	if got := b.Title(); got != "browser test" {
		t.Fatalf("Title = %q", got)
	}
	if got := b.URL(); got != srv.URL+"/#x=1" {
		t.Fatalf("URL = %q", got)
	}
	if late := b.WaitFind("#late", 5*time.Second); late.Text() != "late #x=1" {
		t.Fatalf("#late says %q", late.Text())
	}

	in := b.Find("#name")
	in.Type("ann")
	b.Find("#go").Click()
	if got := b.WaitText("#out", "hello", 5*time.Second); got != "hello ann" {
		t.Fatalf("after click: %q", got)
	}
	if v := in.Property("value"); v != "ann" {
		t.Fatalf("value property = %v", v)
	}
	if in.Attr("id") != "name" || in.Attr("nosuch") != "" {
		t.Fatalf("Attr: id %q, nosuch %q", in.Attr("id"), in.Attr("nosuch"))
	}
	in.Clear()
	in.Type("bob" + e2e.KeyEnter)
	b.WaitText("#out", "enter bob", 5*time.Second)

	// The keyboard alone: the input has the focus, Tab moves it to the
	// button, Enter presses it.
	if !in.Focused() {
		t.Fatal("the input lost the focus it was typed into")
	}
	b.Keys(e2e.KeyTab)
	if a := b.Active(); a.Attr("id") != "go" {
		t.Fatalf("after Tab the focus is on %q", a.Attr("id"))
	}
	// Shift-Tab back to the input (which selects its text), End, type.
	b.Keys(e2e.KeyShift+e2e.KeyTab, e2e.KeyEnd, "!", e2e.KeyTab, e2e.KeyEnter)
	b.WaitText("#out", "hello bob!", 5*time.Second)
	if els := b.FindAll("p, label"); len(els) != 2 || els[0].Text() != "Name" {
		t.Fatalf("FindAll(p, label) = %d elements", len(els))
	}
	if els := b.FindAll(".nosuch"); len(els) != 0 {
		t.Fatalf("FindAll(.nosuch) = %d elements", len(els))
	}

	// Scripts: arguments (elements too), return values, promises, errors.
	var sum struct {
		N  float64 `json:"n"`
		ID string  `json:"id"`
	}
	b.Exec(&sum, "return {n: arguments[0] + arguments[1], id: arguments[2].id};", 2, 3, in)
	if sum.N != 5 || sum.ID != "name" {
		t.Fatalf("Exec = %+v", sum)
	}
	if v := b.Eval("new Promise(r => setTimeout(() => r('later'), 50))"); v != "later" {
		t.Fatalf("Eval of a promise = %v", v)
	}
	b.WaitJS(5*time.Second, "document.getElementById('out').textContent.startsWith('hello')")
	if log := b.ConsoleLog(); !strings.Contains(log, "page loaded") {
		t.Fatalf("console log lacks the page's message:\n%s", log)
	}

	// How helpers fail: with a message naming what was missing.
	f := &fatalTB{TB: t}
	fb := b.WithTB(f)
	if msg := f.fails(func() { fb.Find("#nosuch") }); !strings.Contains(msg, `no element matches "#nosuch"`) {
		t.Fatalf("Find of a missing element: %q", msg)
	}
	if msg := f.fails(func() { fb.WaitJS(300*time.Millisecond, "window.nosuch.x") }); !strings.Contains(msg, "window.nosuch.x") {
		t.Fatalf("WaitJS that never holds: %q", msg)
	}
	if msg := f.fails(func() { fb.Exec(nil, "throw new Error('boom')") }); !strings.Contains(msg, "boom") {
		t.Fatalf("Exec of a throwing script: %q", msg)
	}
	if msg := f.fails(func() { fb.WaitText("#out", "never", 300*time.Millisecond) }); !strings.Contains(msg, `"never"`) {
		t.Fatalf("WaitText that never holds: %q", msg)
	}

	shot := b.Screenshot("page")
	if filepath.Dir(shot) != filepath.Join(artifacts, "TestBrowser") || !strings.HasSuffix(shot, "01-page.png") {
		t.Fatalf("screenshot saved as %s, not under %s", shot, artifacts)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(png), err)
	}

	b.Close()
	b.Close() // idempotent
	if msg := f.fails(func() { fb.Title() }); msg == "" {
		t.Fatal("a command after Close did not fail")
	}
}

func TestBrowserMissing(t *testing.T) {
	for _, o := range []e2e.BrowserOptions{
		{Chromium: "/nonexistent/chromium"},
		{Chromedriver: "/nonexistent/chromedriver"},
	} {
		b, err := e2e.NewBrowser(t, o)
		if b != nil || !errors.Is(err, e2e.ErrNoBrowser) || !strings.Contains(err.Error(), "apt-get install chromium chromium-driver") ||
			!strings.Contains(err.Error(), "/nonexistent/") {
			t.Fatalf("NewBrowser(%+v) = %v, %v", o, b, err)
		}
	}
}
