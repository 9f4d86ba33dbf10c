package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Main runs the load generator with the command-line arguments args (without
// the program or subcommand name), writes the report to stdout and progress
// and diagnostics to stderr, and returns the process exit code: 0 on a
// completed run in which at least one request got an HTTP answer, 1 when
// none did or an output could not be written, 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice load: %v\n", err)
		return 2
	}
	var progress io.Writer
	if cfg.ProgressInterval > 0 {
		progress = stderr
		fmt.Fprintf(stderr, "sluice load: POST %s, %s\n", cfg.URL, cfg.describe())
	}
	rep, err := Run(ctx, cfg, progress)
	if rep == nil {
		fmt.Fprintf(stderr, "sluice load: %v\n", err)
		if errors.Is(err, ErrUsage) {
			return 2
		}
		return 1
	}
	code := 0
	if err != nil {
		fmt.Fprintf(stderr, "sluice load: %v\n", err)
		code = 1
	}
	if o.jsonOut != "-" {
		if err := rep.WriteText(stdout); err != nil {
			fmt.Fprintf(stderr, "sluice load: write report: %v\n", err)
			code = 1
		}
	}
	if o.jsonOut != "" {
		if err := writeOutput(o.jsonOut, stdout, rep.WriteJSON); err != nil {
			fmt.Fprintf(stderr, "sluice load: write JSON report: %v\n", err)
			code = 1
		}
	}
	if o.plotOut != "" {
		if err := writeOutput(o.plotOut, stdout, rep.WriteSVG); err != nil {
			fmt.Fprintf(stderr, "sluice load: write plot: %v\n", err)
			code = 1
		}
	}
	var answered uint64
	for _, n := range rep.Status {
		answered += n
	}
	if answered == 0 && rep.Requests.Total > 0 {
		fmt.Fprintf(stderr, "sluice load: no request got an HTTP answer\n")
		code = 1
	}
	return code
}

// writeOutput writes with write to path, or to stdout when path is "-".
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
