// Package cli is the command line's machinery, shared by the commands of cmd/ledgerstream
// (which define the commands, their help and their printing): the layering of flag,
// environment and --config file (config.go), the range rule of every numeric flag
// (ranges.go), the flag groups several commands share and the configuration they build
// (globals.go, security.go, run.go, produce.go, maintain.go), exit statuses, signals and
// JSON errors (exit.go), progress lines (progress.go) and --version (version.go).
package cli
