// Package retry holds ledgerstream's one answer to a dependency that fails for a while:
// which errors are worth retrying (Classify), how to retry them (Policy: capped
// exponential backoff with jitter, a timeout per attempt, a bound on one outage), and what
// is known of each dependency meanwhile (Tracker: up or down, since when, the last error),
// which logs, /readyz and the metrics read.
package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"gocloud.dev/gcerrors"
)

// Dependency names a service the pipeline cannot work without.
type Dependency string

// The pipeline's dependencies.
const (
	Kafka   Dependency = "kafka"
	Catalog Dependency = "catalog"
	Storage Dependency = "storage"
)

// Dependencies lists every Dependency, in the order status pages show them.
var Dependencies = []Dependency{Kafka, Catalog, Storage}

// Class says whether retrying an error can help.
type Class int

const (
	// Temporary errors heal by themselves: a refused or reset connection, a timeout, a
	// full disk, a server error, a broker that moved.
	Temporary Class = iota
	// Permanent errors need a person: denied access, a missing bucket, a wrong password or
	// certificate, a schema mismatch, a damaged file.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "temporary"
}

// marked is an error whose class (and, optionally, dependency) a caller decided.
type marked struct {
	err   error
	class Class
	dep   Dependency
	set   bool // class is set (a Tag sets only the dependency)
}

func (m *marked) Error() string { return m.err.Error() }
func (m *marked) Unwrap() error { return m.err }

// MarkPermanent marks err as one retrying cannot fix, whatever it wraps.
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: Permanent, set: true}
}

// MarkTemporary marks err as one that heals by itself, whatever it wraps.
func MarkTemporary(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: Temporary, set: true}
}

// Tag records which dependency produced err, for an operation that uses several (a
// commit writes manifests to storage, then swaps the catalog's pointer).
func Tag(dep Dependency, err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, dep: dep}
}

// DependencyOf returns the dependency a Tag recorded in err's chain (the outermost one).
func DependencyOf(err error) (Dependency, bool) {
	for err != nil {
		if m, ok := err.(*marked); ok && m.dep != "" {
			return m.dep, true
		}
		err = errors.Unwrap(err)
		// errors.Join and multi-%w errors: look into the first branch that has a tag.
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				if d, ok := DependencyOf(e); ok {
					return d, true
				}
			}
			return "", false
		}
	}
	return "", false
}

// IsKnownTemporary reports whether err itself says that retrying can help (a network
// failure, a server's retriable code, a locked SQLite catalog), as opposed to Classify's
// default for an error no rule knows. For operations whose own refusals reach the caller
// unmarked, this is the test that keeps them from being waited on.
func IsKnownTemporary(err error) bool {
	if err == nil {
		return false
	}
	var m *marked
	for e := err; errors.As(e, &m); e = m.err {
		if m.set {
			return m.class == Temporary
		}
	}
	if c, ok := classifyServer(err); ok {
		return c == Temporary
	}
	c, ok := classifyLocal(err)
	return ok && c == Temporary
}

// IsTemporary reports whether Classify(err) is Temporary. Nil is not.
func IsTemporary(err error) bool { return err != nil && Classify(err) == Temporary }

// Classify says whether retrying err can help. It is the one place that knows the
// libraries' errors: the network and the OS, PostgreSQL (pgx), S3 (the AWS SDK through
// gocloud), Kafka (franz-go). The most specific evidence wins: an explicit mark, then
// what the server said (an S3 error code, a PostgreSQL SQLSTATE, a Kafka error code),
// then the transport. An error no rule knows is Temporary: every error reaching Classify
// comes from a dependency operation, and waiting costs at most --outage-timeout, loudly,
// while giving up on a passing fault stops the pipeline until a person restarts it.
func Classify(err error) Class {
	if err == nil {
		return Temporary
	}
	var m *marked
	for e := err; errors.As(e, &m); e = m.err {
		if m.set {
			return m.class
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Permanent // the caller stopped: nothing to retry
	case errors.Is(err, kgo.ErrClientClosed):
		return Permanent
	}
	if c, ok := classifyServer(err); ok {
		return c
	}
	if c, ok := classifyLocal(err); ok {
		return c
	}
	return Temporary
}

// classifyServer reads what a server answered: an S3 error code, a PostgreSQL SQLSTATE,
// a Kafka error code, a refused TLS handshake.
func classifyServer(err error) (Class, bool) {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
			"InvalidBucketName", "AllAccessDisabled", "AccountProblem", "InvalidObjectState",
			"NoSuchKey", "NotFound", "ExpiredToken", "InvalidToken", "MissingSecurityHeader":
			return Permanent, true
		}
		if api.ErrorFault() == smithy.FaultClient && !strings.Contains(api.ErrorCode(), "Timeout") &&
			api.ErrorCode() != "SlowDown" && api.ErrorCode() != "RequestTimeTooSkewed" {
			return Permanent, true
		}
		return Temporary, true
	}
	// A request that never got an answer (the server killed or unreachable) is a transport
	// failure, whatever code gocloud gives it: a killed versitygw came back as NotFound.
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return Temporary, true
	}
	switch gcerrors.Code(err) {
	case gcerrors.PermissionDenied, gcerrors.NotFound, gcerrors.InvalidArgument, gcerrors.Unimplemented:
		return Permanent, true
	case gcerrors.ResourceExhausted, gcerrors.Internal, gcerrors.DeadlineExceeded:
		return Temporary, true
	}
	// SQLite (modernc) answers SQLITE_BUSY or SQLITE_LOCKED, extended codes included, when
	// another process holds the catalog's write lock beyond the busy timeout, or at once when
	// a reading transaction must upgrade: the lock is released when that writer finishes.
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return Temporary, true
		}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"), // connection exception
			strings.HasPrefix(pg.Code, "53"),       // insufficient resources (disk full, too many connections)
			strings.HasPrefix(pg.Code, "57"),       // operator intervention: shutdown, cannot connect now
			strings.HasPrefix(pg.Code, "58"),       // system error (I/O)
			pg.Code == "40001", pg.Code == "40P01": // serialization failure, deadlock
			return Temporary, true
		}
		return Permanent, true // authentication (28), missing database (3D), schema (42), …
	}
	var groupErr *kgo.ErrGroupSession
	if errors.As(err, &groupErr) {
		if c, ok := classifyServer(groupErr.Err); ok {
			return c, true
		}
		return classifyLocal(groupErr.Err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress:
			return Temporary, true // group churn: the client rejoins by itself
		}
		if ke.Retriable {
			return Temporary, true
		}
		return Permanent, true
	}
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &alert) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) {
		return Permanent, true
	}
	return Temporary, false
}

// classifyLocal reads the OS's and the transport's errors.
func classifyLocal(err error) (Class, bool) {
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS),
		errors.Is(err, fs.ErrPermission):
		return Permanent, true
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EIO),
		errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENOMEM):
		return Temporary, true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return Temporary, true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return Temporary, true
	case errors.Is(err, fs.ErrNotExist):
		return Permanent, true // a file the table names is gone: damage, not an outage
	case kgo.IsRetryableBrokerErr(err):
		return Temporary, true // franz-go's dead-connection errors, dial failures
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return Temporary, true
	}
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typeErr) {
		return Permanent, true // a damaged metadata file
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Temporary, true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return Temporary, true
	}
	return Temporary, false
}
