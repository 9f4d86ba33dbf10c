package main

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	rustsdk "github.com/sluicehq/sluice/guest-sdk/rust"
)

// The templates of `sluice transform init`, one folder per language. A
// file's name drops ".tmpl"; "gitignore" becomes ".gitignore".
//
//go:embed all:templates
var templates embed.FS

const transformUsage = `Usage:
  sluice transform init [--lang go|rust] [--sdk DIR] NAME [DIR]

init writes a new transform project NAME into DIR (default ./NAME, which
must be missing or empty): the source of a working transform, a unit test,
sample events and a README with the build, test, upload, dry-run and
pipeline commands.

  --lang rust   a cdylib crate for wasm32-wasi; the Rust SDK this binary was
                built with is vendored into DIR/vendor/sluice
  --lang go     a Go module for GOOS=wasip1; its go.mod points at the Go SDK
                of a sluice checkout (--sdk, or found above the working
                folder or this binary)
`

// goSDKModule is the module path of the Go SDK.
const goSDKModule = "github.com/sluicehq/sluice/guest-sdk/go"

// transformCmd is `sluice transform …`.
func transformCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, transformUsage)
		return 2
	}
	switch args[0] {
	case "init":
		return transformInit(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, transformUsage)
		return 0
	}
	fmt.Fprintf(stderr, "sluice transform: unknown command %q\n\n%s", args[0], transformUsage)
	return 2
}

// scaffold is what the templates see.
type scaffold struct {
	Name      string // the transform (and package) name
	Crate     string // Name as a Rust crate name ("-" → "_"): the .wasm cargo writes
	GoSDK     string // absolute path of the Go SDK module (Go only)
	GoVersion string // the go directive of the Go SDK's go.mod (Go only)
}

// nameRE is what a scaffold's name may be: a valid transform name, Rust
// package name and Go module path.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

func transformInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice transform init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, transformUsage) }
	lang := fs.String("lang", "rust", "language of the transform: go or rust")
	sdk := fs.String("sdk", "", "Go SDK folder (guest-sdk/go of a sluice checkout); default: found above the working folder or this binary")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// Flags may also follow NAME and DIR.
	rest := fs.Args()
	var pos []string
	for len(rest) > 0 {
		pos = append(pos, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return 2
		}
		rest = fs.Args()
	}
	if len(pos) < 1 || len(pos) > 2 {
		fmt.Fprint(stderr, transformUsage)
		return 2
	}
	name, dir := pos[0], pos[0]
	if len(pos) == 2 {
		dir = pos[1]
	}
	if err := initTransform(*lang, name, dir, *sdk); err != nil {
		fmt.Fprintf(stderr, "sluice transform init: %v\n", err)
		return 1
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(stdout, "wrote a %s transform %q to %s; see %s for the build, test and upload commands\n",
		*lang, name, abs, filepath.Join(dir, "README.md"))
	return 0
}

// initTransform writes the project of a lang transform named name into dir.
func initTransform(lang, name, dir, sdk string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q: use 1–64 of a-z 0-9 _ -, starting with a letter", name)
	}
	s := scaffold{Name: name, Crate: strings.ReplaceAll(name, "-", "_")}
	switch lang {
	case "rust":
	case "go":
		var err error
		if s.GoSDK, s.GoVersion, err = findGoSDK(sdk); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--lang %q: want go or rust", lang)
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	files, err := render(lang, s)
	if err != nil {
		return err
	}
	if lang == "rust" {
		if err := vendorRustSDK(files); err != nil {
			return err
		}
	}
	for rel, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// emptyDir makes dir, or checks that it is an empty folder.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty: choose a new folder", dir)
	}
	return nil
}

// render executes every template of lang; the result maps a file's path
// in the project (slash-separated) to its bytes.
func render(lang string, s scaffold) (map[string][]byte, error) {
	root := path.Join("templates", lang)
	files := map[string][]byte{}
	err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := t.Execute(&out, s); err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		if path.Base(rel) == "gitignore" {
			rel = path.Join(path.Dir(rel), ".gitignore")
		}
		files[rel] = out.Bytes()
		return nil
	})
	return files, err
}

// vendorRustSDK adds the Rust SDK this binary embeds under vendor/sluice.
func vendorRustSDK(files map[string][]byte) error {
	return fs.WalkDir(rustsdk.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := rustsdk.Files.ReadFile(p)
		if err != nil {
			return err
		}
		files[path.Join("vendor/sluice", p)] = b
		return nil
	})
}

// findGoSDK returns the Go SDK's absolute folder and its go directive:
// dir when given, otherwise guest-sdk/go of the first sluice checkout at or
// above the working folder or the running binary.
func findGoSDK(dir string) (string, string, error) {
	var candidates []string
	if dir != "" {
		candidates = []string{dir}
	} else {
		var starts []string
		if wd, err := os.Getwd(); err == nil {
			starts = append(starts, wd)
		}
		if exe, err := os.Executable(); err == nil {
			if exe, err = filepath.EvalSymlinks(exe); err == nil {
				starts = append(starts, filepath.Dir(exe))
			}
		}
		for _, s := range starts {
			for d := s; ; d = filepath.Dir(d) {
				candidates = append(candidates, filepath.Join(d, "guest-sdk", "go"))
				if filepath.Dir(d) == d {
					break
				}
			}
		}
	}
	for _, c := range candidates {
		mod, err := os.ReadFile(filepath.Join(c, "go.mod"))
		if err != nil {
			continue
		}
		var module, goVersion string
		for l := range strings.Lines(string(mod)) {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "module" {
				module = f[1]
			}
			if len(f) == 2 && f[0] == "go" {
				goVersion = f[1]
			}
		}
		if module != goSDKModule {
			if dir != "" {
				return "", "", fmt.Errorf("--sdk %s: its go.mod is module %q, not %s", dir, module, goSDKModule)
			}
			continue
		}
		abs, err := filepath.Abs(c)
		if err != nil {
			return "", "", err
		}
		return filepath.ToSlash(abs), goVersion, nil
	}
	if dir != "" {
		return "", "", fmt.Errorf("--sdk %s: no go.mod there", dir)
	}
	return "", "", errors.New("no Go SDK found: run from a sluice checkout, or pass --sdk PATH/TO/sluice/guest-sdk/go (the Go SDK is not published as a module)")
}
