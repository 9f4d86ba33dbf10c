package gateway

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"
	"go.yaml.in/yaml/v3"
)

// LoadConfig builds the configuration of `sluice run` from args, in this
// order of precedence (highest first): the flags given, the YAML file of
// --config, the environment variables of the options that have one, the
// defaults. Lists tagged `merge` add up instead (file, then environment,
// then flags). A tenant's key_env adds one more key from the environment.
// It validates the result. getenv may be nil (os.Getenv); stderr receives
// the help (--help, returned as flag.ErrHelp).
//
// The options, their flags, keys, variables and defaults are the tags of
// Config's fields; kong (github.com/alecthomas/kong) parses the flags and
// the YAML file is read by a kong.Resolver over go.yaml.in/yaml/v3.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var cfg Config
	st := &loadState{getenv: getenv}
	p, err := newParser(&cfg, st, stderr)
	if err != nil {
		return Config{}, err
	}
	ctx, err := p.Parse(args)
	if st.helped {
		return Config{}, flag.ErrHelp
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// Where each option came from: the command line or a resolver (the
	// environment, the file).
	cmdline, given := map[string]bool{}, map[string]bool{}
	for _, pt := range ctx.Path {
		if pt.Flag != nil {
			given[pt.Flag.Name] = true
			cmdline[pt.Flag.Name] = cmdline[pt.Flag.Name] || !pt.Resolved
		}
	}
	var file Config
	if st.file != nil {
		file = st.file.cfg
		for _, o := range options() {
			if o.flag == "" && o.yaml != "" {
				// YAML-only options come from the file alone.
				fieldOf(&cfg, o.index).Set(fieldOf(&file, o.index))
			}
			if o.flag != "" && st.file.has(o.flag) {
				given[o.flag] = true
			}
		}
	}
	for _, o := range options() {
		if o.flag == "" && o.yaml == "" {
			// Environment-only options (secrets).
			for _, e := range o.env {
				if v := getenv(e); v != "" {
					fieldOf(&cfg, o.index).SetString(v)
					break
				}
			}
		}
		if !o.merge {
			continue
		}
		v := fieldOf(&cfg, o.index)
		merged := append([]string(nil), fieldOf(&file, o.index).Interface().([]string)...)
		for _, e := range o.env {
			merged = append(merged, splitList(getenv(e))...)
		}
		if cmdline[o.flag] {
			merged = append(merged, v.Interface().([]string)...)
		}
		v.Set(reflect.ValueOf(merged))
	}
	for i := range cfg.Tenants {
		if t := &cfg.Tenants[i]; t.KeyEnv != "" {
			if v := getenv(t.KeyEnv); v != "" {
				t.Keys = append(t.Keys, v)
			}
		}
	}
	cfg.memoryLimitSet = given["memory-limit"]
	switch {
	case cfg.AdminToken == "":
	case cmdline["admin-token"]:
		cfg.adminTokenFrom = "--admin-token"
	case st.file != nil && st.file.has("admin-token"):
		cfg.adminTokenFrom = "admin_token in " + string(cfg.ConfigFile)
	default:
		cfg.adminTokenFrom = "SLUICE_ADMIN_TOKEN"
	}
	if !given["driver-depth"] && cfg.Dev && cfg.Sink == SinkKafka {
		// The embedded broker works on the gateway's cores: fewer
		// batches in the process stage leave it the time to take them
		// (BENCHMARKS.md, driver depth).
		cfg.DriverDepth = DevDriverDepth
	}
	if !given["max-event"] && cfg.MaxEvent > cfg.MaxBody {
		cfg.MaxEvent = cfg.MaxBody // the default per-event cap follows a smaller body cap
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// loadState is what one LoadConfig shares with kong's hooks and resolvers.
type loadState struct {
	getenv func(string) string
	file   *yamlResolver // the --config file, once read
	helped bool          // --help was given
}

// newParser returns the kong parser of Config over cfg.
func newParser(cfg *Config, st *loadState, w io.Writer) (*kong.Kong, error) {
	var root struct{}
	// Config is embedded (not the root) so that kong does not call
	// Config.Validate before LoadConfig has merged what kong cannot.
	return kong.New(&root, kong.Embed(cfg),
		kong.Name("sluice run"),
		kong.Description("Start the gateway. Every flag but --config, --from-topics and --group (YAML: sources:) is also a key of the --config YAML file (examples/sluice.yaml)."),
		kong.Writers(w, w),
		kong.Exit(func(int) { st.helped = true }),
		kong.Bind(st),
		kong.Resolvers(envResolver{st}),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
	)
}

// applyDefaults sets every option of c that has a default tag to it.
func applyDefaults(c *Config) error {
	p, err := newParser(c, &loadState{getenv: os.Getenv}, io.Discard)
	if err != nil {
		return err
	}
	for _, group := range p.Model.AllFlags(true) {
		for _, f := range group {
			if !f.HasDefault || !f.Target.IsValid() {
				continue
			}
			if err := f.Parse(kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: f.Default}), f.Target); err != nil {
				return fmt.Errorf("--%s default %q: %w", f.Name, f.Default, err)
			}
		}
	}
	return nil
}

// ConfigPath is the --config flag: the YAML file whose keys fill the
// options the command line did not give.
type ConfigPath string

// BeforeResolve reads the file and adds it as a resolver (a kong hook).
func (c ConfigPath) BeforeResolve(ctx *kong.Context, trace *kong.Path, st *loadState) error {
	path, _ := ctx.FlagValue(trace.Flag).(ConfigPath)
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(string(path))
	if err != nil {
		return err
	}
	r, err := newYAMLResolver(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	st.file = r
	ctx.AddResolver(r)
	return nil
}

// envResolver reads the options tagged env through loadState.getenv.
// (kong reads them from the process environment too; this also makes them
// count as given, and lets tests pass their own environment.) Lists tagged
// merge are left to LoadConfig.
type envResolver struct{ st *loadState }

// Validate implements kong.Resolver.
func (envResolver) Validate(*kong.Application) error { return nil }

// Resolve implements kong.Resolver.
func (r envResolver) Resolve(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
	if f.Tag.Has("merge") {
		return nil, nil
	}
	for _, e := range f.Tag.Envs {
		if v := r.st.getenv(e); v != "" {
			return v, nil
		}
	}
	return nil, nil
}

// yamlResolver resolves options from a YAML file by their yaml keys (a
// group's keys nest under the group's key). The file is also decoded
// strictly into a Config: an unknown key or a value of the wrong type is an
// error naming its line, and the YAML-only options (tenants) come from it.
type yamlResolver struct {
	doc *yaml.Node // the top-level mapping (nil: an empty file)
	cfg Config
}

func newYAMLResolver(b []byte) (*yamlResolver, error) {
	r := &yamlResolver{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r.cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		r.doc = doc.Content[0]
	}
	return r, nil
}

// node returns the YAML node of a flag's option (nil: not in the file).
func (r *yamlResolver) node(flagName string) *yaml.Node {
	o, ok := optionByFlag()[flagName]
	if !ok || o.yaml == "" || r.doc == nil {
		return nil
	}
	n := r.doc
	for _, key := range strings.Split(o.yaml, ".") {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// has reports whether the file gives the option of flagName.
func (r *yamlResolver) has(flagName string) bool {
	v, _ := r.value(flagName)
	return v != nil
}

// value converts the option's node for kong: a scalar's text, or a list of
// them. Null and "" mean not given (so an empty admin_token leaves the
// environment's).
func (r *yamlResolver) value(flagName string) (any, error) {
	n := r.node(flagName)
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" || n.Value == "" {
			return nil, nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a list of values", c.Line)
			}
			l = append(l, c.Value)
		}
		return l, nil
	default:
		return nil, fmt.Errorf("line %d: want a value or a list", n.Line)
	}
}

// Validate implements kong.Resolver (the strict decode already checked the
// keys).
func (r *yamlResolver) Validate(*kong.Application) error { return nil }

// Resolve implements kong.Resolver.
func (r *yamlResolver) Resolve(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
	if f.Tag.Has("merge") {
		return nil, nil // LoadConfig adds the file's list to the others
	}
	return r.value(f.Name)
}

// option is one field of Config, as its tags describe it.
type option struct {
	flag    string // the flag name without "--" ("" for YAML-only)
	yaml    string // the dotted YAML key path ("" for flag-only)
	env     []string
	merge   bool
	index   []int // the field's index path in Config
	field   reflect.StructField
	nesting string // the YAML path of the enclosing group ("" at the top)
}

// options lists Config's options in declaration order, groups flattened.
func options() []option { return optionList }

var optionList = collectOptions(reflect.TypeFor[Config](), nil, "", "")

// optionByFlag maps flag names to options.
func optionByFlag() map[string]option { return optionsByFlag }

var optionsByFlag = func() map[string]option {
	m := map[string]option{}
	for _, o := range optionList {
		if o.flag != "" {
			m[o.flag] = o
		}
	}
	return m
}()

// collectOptions walks t: each exported field is an option; a field tagged
// embed is a group whose fields take its flag prefix and nest under its
// yaml key.
func collectOptions(t reflect.Type, index []int, flagPrefix, yamlPrefix string) []option {
	var out []option
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if _, ok := f.Tag.Lookup("embed"); ok {
			out = append(out, collectOptions(f.Type, idx, flagPrefix+f.Tag.Get("prefix"), joinKey(yamlPrefix, key))...)
			continue
		}
		o := option{index: idx, field: f, nesting: yamlPrefix}
		if f.Tag.Get("kong") != "-" {
			o.flag = flagPrefix + f.Tag.Get("name")
		}
		if key != "-" {
			o.yaml = joinKey(yamlPrefix, key)
		}
		if e := f.Tag.Get("env"); e != "" {
			o.env = strings.Split(e, ",")
		}
		_, o.merge = f.Tag.Lookup("merge")
		out = append(out, o)
	}
	return out
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// fieldOf returns the field at index of *c.
func fieldOf(c *Config, index []int) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(index)
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var l []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l = append(l, p)
		}
	}
	return l
}
