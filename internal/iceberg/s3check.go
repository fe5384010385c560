package iceberg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	iceio "github.com/apache/iceberg-go/io"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
)

// ErrWarehouseConfig reports a warehouse that cannot work as configured: an unsupported
// scheme, or an S3 warehouse without a region or credentials. Its message says what to set.
var ErrWarehouseConfig = errors.New("warehouse configuration")

// supportedWarehouseSchemes are the schemes ledgerstream links a FileIO for: local paths
// (no scheme, file://) and S3 (s3://, and Hadoop's s3a:// and s3n://).
var supportedWarehouseSchemes = []string{"", "file", "s3", "s3a", "s3n"}

// checkWarehouse refuses, before anything is created, a warehouse that would only fail
// later with a library's message: a scheme without a FileIO (iceberg-go answers "hint:
// import the matching IO module", advice for a Go developer), and an S3 warehouse without
// a region or credentials (the SDK's "Invalid region: region was not a valid DNS name", or
// an instance-metadata error with its own WARN line on stderr).
func checkWarehouse(ctx context.Context, warehouse string, props map[string]string) error {
	u, err := url.Parse(warehouse)
	if err != nil || !strings.Contains(warehouse, "://") {
		return nil // a local path
	}
	scheme := strings.ToLower(u.Scheme)
	found := false
	for _, s := range supportedWarehouseSchemes {
		found = found || s == scheme
	}
	if !found {
		return fmt.Errorf("%w: --warehouse %s: %s:// is not supported; use a local path, file://…, or s3://bucket/prefix (any S3-compatible store, with --s3-endpoint)",
			ErrWarehouseConfig, warehouse, scheme)
	}
	if scheme == "" || scheme == "file" {
		return nil
	}
	// The same resolution iceberg-go's S3 FileIO does (environment, shared config and
	// credentials files, web identity, container and instance roles), with the SDK's log
	// lines sent to slog instead of stderr.
	opts := []func(*config.LoadOptions) error{config.WithLogger(sdkLogger{})}
	if r := props[iceio.S3Region]; r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("%w: --warehouse %s: reading the AWS configuration: %v", ErrWarehouseConfig, warehouse, err)
	}
	if cfg.Region == "" {
		return fmt.Errorf("%w: --warehouse %s: no AWS region: set --s3-region (or AWS_REGION, or region in your AWS profile)",
			ErrWarehouseConfig, warehouse)
	}
	// Instance metadata answers within a second where it exists; elsewhere the SDK would
	// try for longer before giving up.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		slog.Debug("no AWS credentials", "error", err)
		return fmt.Errorf("%w: --warehouse %s: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws/credentials), or run with an instance or container role",
			ErrWarehouseConfig, warehouse)
	}
	return nil
}

// sdkLogger sends the AWS SDK's log lines to slog at debug level: they are diagnostics for
// a developer (such as "failed to get session token, falling back to IMDSv1"), and what a
// person needs is in the error checkWarehouse returns.
type sdkLogger struct{}

func (sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	slog.Debug("aws sdk: "+fmt.Sprintf(format, v...), "classification", string(c))
}
