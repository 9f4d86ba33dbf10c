package load

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// Main runs the load generator with the command-line arguments args (without
// the program or subcommand name), writes the report to stdout and progress
// and diagnostics to stderr, and returns the process exit code: 0 on a
// completed run, 2 on a usage error, 1 on any other failure.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/v1/events", "ingest endpoint")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "load: %s\n", *url)
	return 0
}
