package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Browser tests drive Debian's headless Chromium through chromedriver over
// the W3C WebDriver protocol (HTTP + JSON, https://www.w3.org/TR/webdriver2/),
// with net/http only.

// Default paths of the Debian packages chromium and chromium-driver.
const (
	DefaultChromium     = "/usr/bin/chromium"
	DefaultChromedriver = "/usr/bin/chromedriver"
)

// Environment variables read by StartBrowser.
const (
	// ChromiumEnv names the Chromium binary (default DefaultChromium).
	ChromiumEnv = "SLUICE_TEST_CHROMIUM"
	// ChromedriverEnv names the chromedriver binary (default
	// DefaultChromedriver).
	ChromedriverEnv = "SLUICE_TEST_CHROMEDRIVER"
	// ArtifactsEnv names the folder where screenshots are saved, one
	// subfolder per test; default: a folder made once per test binary
	// under the system's temporary folder, kept after the tests (its
	// path is logged with every screenshot).
	ArtifactsEnv = "SLUICE_TEST_ARTIFACTS"
)

// Keys for Browser.Keys and Element.Type (WebDriver's key codes).
const (
	KeyEnter     = "\uE007"
	KeyTab       = "\uE004"
	KeyEscape    = "\uE00C"
	KeySpace     = "\uE00D"
	KeyBackspace = "\uE003"
	KeyShift     = "\uE008"
	KeyControl   = "\uE009"
	KeyArrowUp   = "\uE013"
	KeyArrowDown = "\uE015"
	KeyHome      = "\uE011"
	KeyEnd       = "\uE010"
)

// ErrNoBrowser is returned by NewBrowser when Chromium or chromedriver is
// not installed; its message says what to install.
var ErrNoBrowser = errors.New("e2e: headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")

// BrowserOptions tune NewBrowser. The zero value runs the Debian binaries
// (or those the environment names) with a 1280×900 window.
type BrowserOptions struct {
	// Chromium and Chromedriver are the binaries; "": the environment's
	// ChromiumEnv / ChromedriverEnv, else the Debian defaults.
	Chromium, Chromedriver string
	// Width and Height are the window size in pixels; 0: 1280×900.
	Width, Height int
	// Timeout bounds each WebDriver command, page loads and scripts
	// included; 0: 60 s.
	Timeout time.Duration
	// Args are more Chromium flags, after the defaults.
	Args []string
}

// chromiumFlags are the flags that work on a headless build machine.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
}

// Browser is one headless Chromium session driven through its own
// chromedriver process. Its methods fail the test (tb) on a WebDriver
// error; call them from the test's goroutine. Close (registered at
// cleanup by StartBrowser) ends the session and both processes.
type Browser struct {
	tb testing.TB
	*chrome
}

// chrome is the state a Browser and its WithTB views share.
type chrome struct {
	driver  *exec.Cmd
	done    chan struct{}
	base    string // http://127.0.0.1:PORT/session/ID
	session string
	client  *http.Client
	profile string
	// Log holds chromedriver's output.
	Log *Buffer

	closeOnce sync.Once
	shots     int
}

// Element is a reference to one element of the page a Browser shows.
type Element struct {
	b  *Browser
	id string
	// Selector is the CSS selector it was found by (for messages).
	Selector string
}

// w3cElement is the JSON key of a web element reference.
const w3cElement = "element-6066-11e4-a52e-4f735466cecf"

// StartBrowser starts a browser (NewBrowser) for tb and closes it at
// cleanup; when tb failed by then, it first saves a screenshot named
// "failure" and logs the page's URL and its console messages. A machine
// without Chromium fails the test with ErrNoBrowser's message: browser
// tests are never skipped.
func StartBrowser(tb testing.TB, o BrowserOptions) *Browser {
	tb.Helper()
	b, err := NewBrowser(tb, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			b.dumpOnFailure()
		}
		b.Close()
	})
	return b
}

// NewBrowser starts chromedriver on a free port of 127.0.0.1 and opens a
// session of headless Chromium with a fresh profile folder. Commands
// report failures to tb. It returns an error wrapping ErrNoBrowser when a
// binary is missing, and the caller must Close the browser.
func NewBrowser(tb testing.TB, o BrowserOptions) (*Browser, error) {
	chromium := firstOf(o.Chromium, os.Getenv(ChromiumEnv), DefaultChromium)
	driver := firstOf(o.Chromedriver, os.Getenv(ChromedriverEnv), DefaultChromedriver)
	for _, bin := range []string{chromium, driver} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoBrowser, bin, err)
		}
	}
	if o.Width == 0 || o.Height == 0 {
		o.Width, o.Height = 1280, 900
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	profile, err := os.MkdirTemp("", "sluice-chromium-")
	if err != nil {
		return nil, err
	}
	b := &Browser{tb: tb, chrome: &chrome{
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: o.Timeout + 10*time.Second},
		profile: profile,
		Log:     &Buffer{Limit: 1 << 20},
	}}
	b.driver = exec.Command(driver, "--port=0")
	// Its own process group: Close ends chromedriver and the Chromium
	// processes it started, and nothing else.
	b.driver.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := b.driver.StdoutPipe()
	if err != nil {
		os.RemoveAll(profile)
		return nil, err
	}
	b.driver.Stderr = b.Log
	if err := b.driver.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, fmt.Errorf("start %s: %w", driver, err)
	}
	shared.mu.Lock()
	shared.browsers = append(shared.browsers, b)
	shared.mu.Unlock()
	go func() {
		b.driver.Wait()
		close(b.done)
	}()
	port, err := readDriverPort(out, b.Log, 30*time.Second)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w\n%s", driver, err, b.Log.String())
	}
	root := "http://127.0.0.1:" + port
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":      "chrome",
		"pageLoadStrategy": "normal",
		"timeouts": map[string]int64{
			"implicit": 0, "pageLoad": o.Timeout.Milliseconds(), "script": o.Timeout.Milliseconds(),
		},
		"goog:loggingPrefs": map[string]string{"browser": "ALL"},
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": append(append(append([]string(nil), chromiumFlags...),
				"--user-data-dir="+profile, fmt.Sprintf("--window-size=%d,%d", o.Width, o.Height)), o.Args...),
		},
	}}}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.command(http.MethodPost, root+"/session", caps, &sess); err != nil {
		b.Close()
		return nil, fmt.Errorf("new Chromium session (%s): %w\n%s", chromium, err, b.Log.Tail(4000))
	}
	b.session = sess.SessionID
	b.base = root + "/session/" + sess.SessionID
	return b, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

var driverPortRE = regexp.MustCompile(`started successfully on port (\d+)`)

// readDriverPort reads chromedriver's standard output until it names its
// port, copying every line to log; the rest is copied in the background.
func readDriverPort(r io.Reader, log io.Writer, timeout time.Duration) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if m := driverPortRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case p, ok := <-found:
		if !ok {
			return "", errors.New("exited before it listened")
		}
		return p, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("did not listen within %v", timeout)
	}
}

// WebDriverError is a failed WebDriver command.
type WebDriverError struct {
	// Command is the method and path.
	Command string
	// Status is the HTTP status.
	Status int
	// Code is the WebDriver error code ("no such element", "timeout", …).
	Code string
	// Message is the driver's message.
	Message string
}

// Error returns the command, the code and the message.
func (e *WebDriverError) Error() string {
	return fmt.Sprintf("webdriver %s: %d %s: %s", e.Command, e.Status, e.Code, firstLineOf(e.Message))
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// WithTB returns the same browser (session, page, processes) reporting
// failures to tb, such as a subtest's.
func (b *Browser) WithTB(tb testing.TB) *Browser { return &Browser{tb: tb, chrome: b.chrome} }

// command sends one WebDriver command and decodes its "value" into out
// (nil: ignored).
func (b *chrome) command(method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	} else if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, url, err)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("webdriver %s %s: %d: %w: %.200s", method, url, res.StatusCode, err, raw)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(env.Value, &e)
		return &WebDriverError{Command: method + " " + strings.TrimPrefix(url, b.base), Status: res.StatusCode, Code: e.Error, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Value, out); err != nil {
		return fmt.Errorf("webdriver %s %s: decode %.200s: %w", method, url, env.Value, err)
	}
	return nil
}

// do is command on the session, failing the test on an error.
func (b *Browser) do(method, path string, in, out any) {
	b.tb.Helper()
	if err := b.command(method, b.base+path, in, out); err != nil {
		b.tb.Fatal(err)
	}
}

// Open loads url and waits for the page's load event.
func (b *Browser) Open(url string) {
	b.tb.Helper()
	b.do(http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// URL returns the current page's URL.
func (b *Browser) URL() string {
	b.tb.Helper()
	var u string
	b.do(http.MethodGet, "/url", nil, &u)
	return u
}

// Title returns the current page's title.
func (b *Browser) Title() string {
	b.tb.Helper()
	var t string
	b.do(http.MethodGet, "/title", nil, &t)
	return t
}

// FindAll returns the elements matching the CSS selector css, in document
// order (none is no failure).
func (b *Browser) FindAll(css string) []*Element {
	b.tb.Helper()
	var refs []map[string]string
	b.do(http.MethodPost, "/elements", map[string]string{"using": "css selector", "value": css}, &refs)
	out := make([]*Element, 0, len(refs))
	for _, r := range refs {
		out = append(out, &Element{b: b, id: r[w3cElement], Selector: css})
	}
	return out
}

// Find returns the first element matching css and fails the test when
// there is none. To wait for an element to appear, use WaitFind.
func (b *Browser) Find(css string) *Element {
	b.tb.Helper()
	els := b.FindAll(css)
	if len(els) == 0 {
		b.tb.Fatalf("no element matches %q on %s", css, b.URL())
	}
	return els[0]
}

// WaitFind waits up to timeout for an element matching css to be shown
// (present and displayed) and returns it.
func (b *Browser) WaitFind(css string, timeout time.Duration) *Element {
	b.tb.Helper()
	var el *Element
	b.Wait(timeout, "an element "+css+" is shown", func() bool {
		for _, e := range b.FindAll(css) {
			if e.displayed() {
				el = e
				return true
			}
		}
		return false
	})
	return el
}

// WaitClick waits until an element matching css is shown and clicks it. A
// page that re-renders the element between the find and the click (a table
// refreshed by a poll) makes the click fail as stale: the element is then
// found again, until timeout.
func (b *Browser) WaitClick(css string, timeout time.Duration) {
	b.tb.Helper()
	b.Wait(timeout, "a click on an element "+css, func() bool {
		for _, e := range b.FindAll(css) {
			if !e.displayed() {
				continue
			}
			err := e.click()
			var we *WebDriverError
			if errors.As(err, &we) && we.Code == "stale element reference" {
				return false
			}
			if err != nil {
				b.tb.Fatal(err)
			}
			return true
		}
		return false
	})
}

// Active returns the focused element.
func (b *Browser) Active() *Element {
	b.tb.Helper()
	var r map[string]string
	b.do(http.MethodGet, "/element/active", nil, &r)
	return &Element{b: b, id: r[w3cElement], Selector: "(focused element)"}
}

// Keys presses and releases each key in turn on whatever has the focus (a
// key is one character or a Key* constant). KeyShift, KeyControl held for
// the next key: Keys(KeyShift+KeyTab) is shift-tab.
func (b *Browser) Keys(keys ...string) {
	b.tb.Helper()
	var acts []map[string]string
	for _, k := range keys {
		rs := []rune(k)
		var mods []string
		for len(rs) > 1 && (string(rs[0]) == KeyShift || string(rs[0]) == KeyControl) {
			mods = append(mods, string(rs[0]))
			rs = rs[1:]
		}
		for _, m := range mods {
			acts = append(acts, map[string]string{"type": "keyDown", "value": m})
		}
		for _, r := range rs {
			acts = append(acts, map[string]string{"type": "keyDown", "value": string(r)},
				map[string]string{"type": "keyUp", "value": string(r)})
		}
		for i := len(mods) - 1; i >= 0; i-- {
			acts = append(acts, map[string]string{"type": "keyUp", "value": mods[i]})
		}
	}
	b.do(http.MethodPost, "/actions", map[string]any{"actions": []any{
		map[string]any{"type": "key", "id": "keyboard", "actions": acts},
	}}, nil)
	b.do(http.MethodDelete, "/actions", nil, nil)
}

// Exec runs script as the body of a function (its arguments are
// arguments[0…]) and decodes its return value into out (nil: ignored). A
// returned Promise is awaited.
func (b *Browser) Exec(out any, script string, args ...any) {
	b.tb.Helper()
	if err := b.exec(out, script, args...); err != nil {
		b.tb.Fatal(err)
	}
}

func (b *Browser) exec(out any, script string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	for i, a := range args {
		if e, ok := a.(*Element); ok {
			args[i] = map[string]string{w3cElement: e.id}
		}
	}
	return b.command(http.MethodPost, b.base+"/execute/async",
		map[string]any{"script": asyncWrapper + script + "\n}).apply(null, args)).then(done, function (e) { done({__error: String(e && e.stack || e)}); });", "args": args},
		&execResult{out: out})
}

// asyncWrapper runs a script body with the caller's arguments and hands
// its (awaited) result, or its exception, to WebDriver's callback.
const asyncWrapper = `var args = Array.prototype.slice.call(arguments, 0, -1), done = arguments[arguments.length - 1];
Promise.resolve().then(() => (function () {
`

// execResult decodes a script's value, turning a thrown error into a Go
// error.
type execResult struct{ out any }

func (r *execResult) UnmarshalJSON(b []byte) error {
	var e struct {
		Err *string `json:"__error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Err != nil {
		return fmt.Errorf("script threw: %s", *e.Err)
	}
	if r.out == nil {
		return nil
	}
	return json.Unmarshal(b, r.out)
}

// Eval returns the value of the JavaScript expression expr, JSON-decoded
// into a Go value (nil, bool, float64, string, []any, map[string]any).
func (b *Browser) Eval(expr string) any {
	b.tb.Helper()
	var v any
	b.Exec(&v, "return ("+expr+");")
	return v
}

// Wait polls cond every 100 ms until it returns true and fails the test,
// naming what, when timeout passes first. cond may call the Browser.
func (b *Browser) Wait(timeout time.Duration, what string, cond func() bool) {
	b.tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.tb.Fatalf("waited %v for %s on %s", timeout, what, b.URL())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitJS waits up to timeout for the JavaScript expression expr to be
// truthy; a throwing expression counts as false.
func (b *Browser) WaitJS(timeout time.Duration, expr string) {
	b.tb.Helper()
	var last error
	b.Wait(timeout, "`"+expr+"`", func() bool {
		var ok bool
		last = b.exec(&ok, "try { return !!("+expr+"); } catch (e) { return false; }")
		return last == nil && ok
	})
	if last != nil {
		b.tb.Fatal(last)
	}
}

// WaitText waits up to timeout for an element matching css whose text
// contains substr and returns that text.
func (b *Browser) WaitText(css, substr string, timeout time.Duration) string {
	b.tb.Helper()
	var text string
	b.Wait(timeout, fmt.Sprintf("an element %s with text %q", css, substr), func() bool {
		var texts []string
		if err := b.exec(&texts, `return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);`, css); err != nil {
			return false
		}
		for _, t := range texts {
			if strings.Contains(t, substr) {
				text = t
				return true
			}
		}
		return false
	})
	return text
}

// ArtifactsDir returns the folder where this test's artifacts go (made if
// missing): ArtifactsEnv's folder, or the test binary's temporary one,
// with a subfolder named after the test.
func ArtifactsDir(tb testing.TB) string {
	tb.Helper()
	root := os.Getenv(ArtifactsEnv)
	if root == "" {
		shared.mu.Lock()
		if shared.artifacts == "" {
			d, err := os.MkdirTemp("", "sluice-test-artifacts-")
			if err != nil {
				shared.mu.Unlock()
				tb.Fatal(err)
			}
			shared.artifacts = d
		}
		root = shared.artifacts
		shared.mu.Unlock()
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "__", " ", "_").Replace(tb.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Screenshot saves a PNG of the window as NN-name.png in ArtifactsDir,
// logs its path and returns it.
func (b *Browser) Screenshot(name string) string {
	b.tb.Helper()
	path, err := b.screenshot(name)
	if err != nil {
		b.tb.Fatal(err)
	}
	b.tb.Logf("screenshot %s", path)
	return path
}

func (b *Browser) screenshot(name string) (string, error) {
	var enc string
	if err := b.command(http.MethodGet, b.base+"/screenshot", nil, &enc); err != nil {
		return "", err
	}
	png, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	b.shots++
	path := filepath.Join(ArtifactsDir(b.tb), fmt.Sprintf("%02d-%s.png", b.shots, name))
	return path, os.WriteFile(path, png, 0o644)
}

// ConsoleLog returns the page's console messages since the last call
// (level and text, one per line).
func (b *Browser) ConsoleLog() string {
	b.tb.Helper()
	s, err := b.consoleLog()
	if err != nil {
		b.tb.Fatal(err)
	}
	return s
}

func (b *Browser) consoleLog() (string, error) {
	var entries []struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	}
	if err := b.command(http.MethodPost, b.base+"/se/log", map[string]string{"type": "browser"}, &entries); err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&sb, "%s %s\n", e.Level, e.Message)
	}
	return sb.String(), nil
}

// dumpOnFailure saves a screenshot and logs the URL and the console.
func (b *Browser) dumpOnFailure() {
	if b.session == "" {
		return
	}
	var url string
	_ = b.command(http.MethodGet, b.base+"/url", nil, &url)
	if path, err := b.screenshot("failure"); err == nil {
		b.tb.Logf("browser at %s; screenshot %s", url, path)
	} else {
		b.tb.Logf("browser at %s; screenshot failed: %v", url, err)
	}
	if log, err := b.consoleLog(); err == nil && log != "" {
		b.tb.Logf("browser console:\n%s", log)
	}
}

// Close ends the session (Chromium exits), stops chromedriver and removes
// the profile folder. Safe to call more than once.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		if b.session != "" {
			_ = b.command(http.MethodDelete, b.base, nil, nil)
		}
		if b.driver.Process != nil {
			_ = syscall.Kill(-b.driver.Process.Pid, syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-b.driver.Process.Pid, syscall.SIGKILL)
				<-b.done
			}
		}
		os.RemoveAll(b.profile)
	})
}

// Click clicks the element (scrolled into view first).
func (e *Element) Click() {
	e.b.tb.Helper()
	if err := e.click(); err != nil {
		e.b.tb.Fatal(err)
	}
}

func (e *Element) click() error {
	return e.b.command(http.MethodPost, e.b.base+"/element/"+e.id+"/click", nil, nil)
}

// Type sends text to the element as key presses (it is focused first);
// text may hold Key* constants.
func (e *Element) Type(text string) {
	e.b.tb.Helper()
	e.b.do(http.MethodPost, "/element/"+e.id+"/value", map[string]string{"text": text}, nil)
}

// Clear empties an input or a textarea.
func (e *Element) Clear() {
	e.b.tb.Helper()
	e.b.do(http.MethodPost, "/element/"+e.id+"/clear", nil, nil)
}

// Text returns the element's rendered text.
func (e *Element) Text() string {
	e.b.tb.Helper()
	var s string
	e.b.do(http.MethodGet, "/element/"+e.id+"/text", nil, &s)
	return s
}

// Property returns the element's DOM property name (such as "value" or
// "checked"), JSON-decoded.
func (e *Element) Property(name string) any {
	e.b.tb.Helper()
	var v any
	e.b.do(http.MethodGet, "/element/"+e.id+"/property/"+name, nil, &v)
	return v
}

// Attr returns the element's attribute name ("" when absent).
func (e *Element) Attr(name string) string {
	e.b.tb.Helper()
	var v *string
	e.b.do(http.MethodGet, "/element/"+e.id+"/attribute/"+name, nil, &v)
	if v == nil {
		return ""
	}
	return *v
}

// Displayed reports whether the element is shown.
func (e *Element) Displayed() bool {
	e.b.tb.Helper()
	return e.displayed()
}

// Focused reports whether the element has the keyboard focus.
func (e *Element) Focused() bool {
	e.b.tb.Helper()
	var ok bool
	e.b.Exec(&ok, "return document.activeElement === arguments[0];", e)
	return ok
}

// displayed is Displayed without failing: an element gone stale is not
// shown.
func (e *Element) displayed() bool {
	var v bool
	return e.b.command(http.MethodGet, e.b.base+"/element/"+e.id+"/displayed", nil, &v) == nil && v
}
