package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationScope names the Manager's meter and tracer: this
// package's import path.
const instrumentationScope = "github.com/partnerkit/pleooauth/connect"

// The Manager's metrics.
const (
	metricRefreshes         = "pleooauth.connect.refreshes"
	metricRefreshDuration   = "pleooauth.connect.refresh.duration"
	metricLeaseWaits        = "pleooauth.connect.lease.waits"
	metricLeaseWaitDuration = "pleooauth.connect.lease.wait.duration"
	metricCacheLookups      = "pleooauth.connect.token.cache.lookups"
	metricConnections       = "pleooauth.connect.connections"
	metricEventLag          = "pleooauth.connect.event.delivery.lag"
)

// The Manager's spans.
const (
	spanRefresh            = "pleooauth.connect.refresh"
	spanIntrospect         = "pleooauth.connect.introspect"
	spanDeleteInstallation = "pleooauth.connect.delete_installation"
	spanAPI                = "pleooauth.connect.api"
)

// The attributes of this package's own.
const (
	// attrConnectionID is a connection's ID, the subject URN: not a secret.
	attrConnectionID = attribute.Key("pleo.connection.id")
	// attrOutcome is what came of a refresh.
	attrOutcome = attribute.Key("outcome")
	// attrResult says whether a cache lookup was a hit or a miss.
	attrResult = attribute.Key("result")
	// attrStatus and attrHealth are a connection's.
	attrStatus = attribute.Key("status")
	attrHealth = attribute.Key("health")
)

// telemetry is a Manager's metrics and spans: the providers its options
// set, and the instruments NewManager makes of them, once. Nothing
// recorded carries a token, a code, a verifier or a secret: attributes are
// connection IDs, outcomes, HTTP methods and statuses, and an error
// recorded is one of this package's, which carry none.
type telemetry struct {
	meters  metric.MeterProvider // WithMeterProvider; otel.GetMeterProvider() if nil
	tracers trace.TracerProvider // WithTracerProvider; otel.GetTracerProvider() if nil

	tracer          trace.Tracer
	refreshes       metric.Int64Counter
	refreshDuration metric.Float64Histogram
	waits           metric.Int64Counter
	waitDuration    metric.Float64Histogram
	lookups         *lookups
	eventLag        metric.Float64Histogram
}

// countTimeout bounds the store's count when metrics are collected.
const countTimeout = 5 * time.Second

// observeConnections reports, whenever metrics are collected, how many
// connections the store holds of each status and health (Store.Count):
// every instance reports the store's totals, so sum over none of them.
func (t *telemetry) observeConnections(store Store, log *slog.Logger) {
	meter := t.meters.Meter(instrumentationScope)
	gauge, err := meter.Int64ObservableGauge(metricConnections, metric.WithUnit("{connection}"),
		metric.WithDescription("Connections in the store, by status and health: the store's totals, the same from every instance."),
	)
	if err == nil {
		_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			ctx, cancel := context.WithTimeout(ctx, countTimeout)
			defer cancel()
			counts, err := store.Count(ctx)
			if err != nil {
				return fmt.Errorf("connect: counting connections: %w", err)
			}
			for _, c := range counts {
				o.ObserveInt64(gauge, c.N, metric.WithAttributes(attrStatus.String(string(c.Status)), attrHealth.String(string(c.Health))))
			}
			return nil
		}, gauge)
	}
	if err != nil {
		log.WarnContext(context.Background(), "connect: telemetry: no connections gauge", "error", err)
	}
}

// delivered records how long after its change an event reached the
// handler.
func (t *telemetry) delivered(ctx context.Context, lag time.Duration) {
	t.eventLag.Record(ctx, max(lag, 0).Seconds())
}

// lookups counts Manager.Token's lookups in the in-process cache, read by
// an observable counter when the metrics are collected: a hit costs one
// atomic add, where a counter's Add would cost more than the hit.
type lookups struct{ hits, misses atomic.Int64 }

// start makes the instruments. One a provider fails to make (it never
// should: the names are valid) is replaced by one that records nothing,
// and the error logged: telemetry never stops a Manager.
func (t *telemetry) start(log *slog.Logger) {
	if t.meters == nil {
		t.meters = otel.GetMeterProvider()
	}
	if t.tracers == nil {
		t.tracers = otel.GetTracerProvider()
	}
	t.tracer = t.tracers.Tracer(instrumentationScope, trace.WithSchemaURL(semconv.SchemaURL))
	meter := t.meters.Meter(instrumentationScope)
	// The histograms' buckets, in seconds: from a refresh over loopback to
	// a lease's whole 30 seconds.
	buckets := metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
	var err error
	var errs []error
	if t.refreshes, err = meter.Int64Counter(metricRefreshes, metric.WithUnit("{refresh}"),
		metric.WithDescription("Refreshes of a connection's tokens that this instance claimed, by outcome: ok, refused (Pleo refused the refresh token: the grant is gone), unknown (no usable answer: quarantined), not_sent (it never reached Pleo: retried), error (Pleo answered another error; nothing rotated), unsaved (Pleo rotated the tokens and they could not be saved)."),
	); err != nil {
		t.refreshes, errs = noop.Int64Counter{}, append(errs, err)
	}
	if t.refreshDuration, err = meter.Float64Histogram(metricRefreshDuration, metric.WithUnit("s"),
		metric.WithDescription("How long a refresh took, from its claim written to its outcome saved, by outcome."),
		buckets,
	); err != nil {
		t.refreshDuration, errs = noop.Float64Histogram{}, append(errs, err)
	}
	if t.waits, err = meter.Int64Counter(metricLeaseWaits, metric.WithUnit("{wait}"),
		metric.WithDescription("Waits for a connection's lease while another instance held it to refresh the connection."),
	); err != nil {
		t.waits, errs = noop.Int64Counter{}, append(errs, err)
	}
	if t.waitDuration, err = meter.Float64Histogram(metricLeaseWaitDuration, metric.WithUnit("s"),
		metric.WithDescription("How long a wait for another instance's lease took."),
		buckets,
	); err != nil {
		t.waitDuration, errs = noop.Float64Histogram{}, append(errs, err)
	}
	if t.eventLag, err = meter.Float64Histogram(metricEventLag, metric.WithUnit("s"),
		metric.WithDescription("How long after a connection's change its event reached the handler of WithEventHandler."),
		metric.WithExplicitBucketBoundaries(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
	); err != nil {
		t.eventLag, errs = noop.Float64Histogram{}, append(errs, err)
	}
	c := &lookups{}
	t.lookups = c
	observed, err := meter.Int64ObservableCounter(metricCacheLookups, metric.WithUnit("{lookup}"),
		metric.WithDescription("Manager.Token's lookups in the in-process token cache, by result: hit (a valid token handed out from memory) or miss (the store read, or the token refreshed)."),
	)
	if err == nil {
		// The callback holds the counts alone: a Manager dropped is freed,
		// and what it counted is still reported.
		hit := metric.WithAttributeSet(attribute.NewSet(attrResult.String("hit")))
		miss := metric.WithAttributeSet(attribute.NewSet(attrResult.String("miss")))
		_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(observed, c.hits.Load(), hit)
			o.ObserveInt64(observed, c.misses.Load(), miss)
			return nil
		}, observed)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		log.WarnContext(context.Background(), "connect: telemetry: the meter provider did not make every instrument; those record nothing", "error", err)
	}
}

// hit counts a Token served from the cache.
func (t *telemetry) hit() { t.lookups.hits.Add(1) }

// miss counts a Token that was not.
func (t *telemetry) miss() { t.lookups.misses.Add(1) }

// waited records a wait for another instance's lease that began at start.
func (t *telemetry) waited(ctx context.Context, start time.Time) {
	t.waits.Add(ctx, 1)
	t.waitDuration.Record(ctx, time.Since(start).Seconds())
}

// refreshRun is one refresh's telemetry: its span, and what came of it.
type refreshRun struct {
	t       *telemetry
	ctx     context.Context
	span    trace.Span
	start   time.Time
	tried   bool // the request was sent, or failed to be: outcome says which
	outcome outcome
}

// startRefresh starts the span of connection id's refresh, which end
// ends.
func (t *telemetry) startRefresh(ctx context.Context, id string) (context.Context, *refreshRun) {
	ctx, span := t.tracer.Start(ctx, spanRefresh, trace.WithAttributes(attrConnectionID.String(id)))
	return ctx, &refreshRun{t: t, ctx: ctx, span: span, start: time.Now()}
}

// sent records what sending the refresh came to.
func (r *refreshRun) sent(o outcome) { r.tried, r.outcome = true, o }

// end counts the refresh by outcome, records its duration, and ends its
// span with *err, the error the refresh returned.
func (r *refreshRun) end(err *error) {
	label := r.label(*err)
	outcome := metric.WithAttributeSet(attribute.NewSet(attrOutcome.String(label)))
	r.t.refreshes.Add(r.ctx, 1, outcome)
	r.t.refreshDuration.Record(r.ctx, time.Since(r.start).Seconds(), outcome)
	r.span.SetAttributes(attrOutcome.String(label))
	endSpan(r.span, nil, *err)
}

// label names the refresh's outcome, as the refreshes counter's
// description says.
func (r *refreshRun) label(err error) string {
	switch {
	case !r.tried:
		return "not_sent" // the claim's write took the whole refresh timeout
	case r.outcome == refreshed && err != nil:
		return "unsaved"
	}
	switch r.outcome {
	case refreshed:
		return "ok"
	case refused:
		return "refused"
	case notSent:
		return "not_sent"
	case answered:
		return "error"
	}
	return "unknown"
}

// do sends req with hc inside a client span named name, for connection id
// ("" when it is not known yet: the introspection that learns it).
func (t *telemetry) do(hc *http.Client, req *http.Request, name, id string) (*http.Response, error) {
	ctx, span := t.tracer.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(requestAttributes(req, id)...))
	resp, err := hc.Do(req.WithContext(ctx))
	endSpan(span, resp, err)
	return resp, err
}

// startCall starts the client span of a call to Pleo's API made through
// Manager.Client for connection id. It returns ctx, where the Manager gets
// the call's token, and r, to send, both carrying the span.
func (t *telemetry) startCall(ctx context.Context, r *http.Request, id string) (context.Context, *http.Request, trace.Span) {
	rctx, span := t.tracer.Start(r.Context(), spanAPI, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(requestAttributes(r, id)...))
	return trace.ContextWithSpan(ctx, span), r.WithContext(rctx), span
}

// requestAttributes are a request's span attributes: its method, its
// host and the connection's ID; never its URL's query, nor a header.
func requestAttributes(r *http.Request, id string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(r.Method), semconv.ServerAddress(r.URL.Hostname())}
	if id != "" {
		attrs = append(attrs, attrConnectionID.String(id))
	}
	return attrs
}

// endSpan ends span with what came of its request: Pleo's status, or err,
// an error of this package's (or of the network), which carries no secret.
// A 4xx or 5xx status is an error (the span of a client).
func endSpan(span trace.Span, resp *http.Response, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
			span.SetStatus(codes.Error, err.Error())
		case resp != nil:
			span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
			if resp.StatusCode >= 400 {
				span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
				span.SetStatus(codes.Error, "")
			}
		}
	}
	span.End()
}

// errorType is a span's error.type for err: the sentinel it matches, or
// _OTHER.
func errorType(err error) string {
	for _, known := range []struct {
		err  error
		name string
	}{
		{ErrReauthorizationRequired, "reauthorization_required"},
		{ErrRefreshPending, "refresh_pending"},
		{ErrDisconnected, "disconnected"},
		{ErrNoConnection, "no_connection"},
		{ErrVersionConflict, "version_conflict"},
		{context.DeadlineExceeded, "timeout"},
		{context.Canceled, "canceled"},
	} {
		if errors.Is(err, known.err) {
			return known.name
		}
	}
	return semconv.ErrorTypeOther.Value.AsString()
}
