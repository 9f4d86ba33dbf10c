package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// The console: static files embedded in the binary, served at /ui/ on the
// admin listener. Nothing is fetched from the network and nothing is
// built at run time; the page talks only to the JSON admin API with the
// token it asks for (see ui/console.js). uPlot (MIT, ui/vendor/uplot) draws
// the charts.
//
//go:embed ui
var uiFS embed.FS

// uiFile is one embedded file with its response headers.
type uiFile struct {
	body        []byte
	contentType string
	etag        string
}

// uiFiles maps a path below /ui/ ("index.html", "vendor/uplot/uPlot.min.css")
// to its file.
type uiFiles struct {
	files map[string]*uiFile
}

// uiAssets are the console's files, read once.
var uiAssets = loadUI(uiFS)

func loadUI(fsys fs.FS) *uiFiles {
	u := &uiFiles{files: map[string]*uiFile{}}
	err := fs.WalkDir(fsys, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch {
		case strings.HasSuffix(p, ".js"):
			ct = "text/javascript; charset=utf-8"
		case ct == "":
			ct = "text/plain; charset=utf-8"
		}
		sum := sha256.Sum256(b)
		u.files[strings.TrimPrefix(p, "ui/")] = &uiFile{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("admin: embedded console: " + err.Error()) // the embed is part of the binary
	}
	return u
}

// uiCSP confines the console to its own origin: scripts, styles and API
// calls from the admin listener only, no frames, no plugins.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveUI serves GET /ui, /ui/ and /ui/{file...}: /ui redirects to /ui/,
// /ui/ is index.html.
func (h *Handler) serveUI(ctx *fasthttp.RequestCtx, _ Params) error {
	p := string(ctx.Path())
	if p == "/ui" {
		ctx.Redirect("/ui/", http.StatusMovedPermanently)
		return nil
	}
	name := strings.TrimPrefix(p, "/ui/")
	if name == "" {
		name = "index.html"
	}
	f, ok := h.ui.files[name]
	if !ok {
		return APIError{HTTPStatus: http.StatusNotFound, Message: "not found: no console file /ui/" + name}
	}
	hdr := &ctx.Response.Header
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", uiCSP)
	if string(ctx.Request.Header.Peek("If-None-Match")) == f.etag {
		ctx.SetStatusCode(http.StatusNotModified)
		return nil
	}
	ctx.SetStatusCode(http.StatusOK)
	ctx.SetContentType(f.contentType)
	ctx.SetBody(f.body)
	return nil
}
