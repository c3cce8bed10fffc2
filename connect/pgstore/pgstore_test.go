package pgstore_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/internal/sqlstore"
	"github.com/partnerkit/pleooauth/connect/internal/sqlstore/sqlstoretest"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/storetest"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), pgtest.Database(t))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) connect.Store {
		s, err := pgstore.New(t.Context(), pool(t))
		require.NoError(t, err)
		return s
	})
}

func TestNewMigratesOnceWhenInstancesStartTogether(t *testing.T) {
	p := pool(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := pgstore.New(t.Context(), p)
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	var n int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT COUNT(*) FROM pleooauth_schema_migrations`).Scan(&n))
	require.Equal(t, 4, n)
}

// TestWithClock: leases, refresh markers, flows and ReadAt are measured on
// the store's clock, which WithClock replaces.
func TestWithClock(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)
	s, err := pgstore.New(t.Context(), pool(t), pgstore.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	sqlstoretest.Clock(t, s, func(d time.Duration) { now = now.Add(d) }, func() time.Time { return now })
}

// TestTimeIsTheDatabases: without WithClock, ReadAt, lease expiries and
// refresh markers are the database's now(): ReadAt falls between two
// readings of the database's clock, and a statement's times are one.
func TestTimeIsTheDatabases(t *testing.T) {
	ctx := t.Context()
	p := pool(t)
	s, err := pgstore.New(ctx, p)
	require.NoError(t, err)
	dbNow := func() (now time.Time) {
		require.NoError(t, p.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now))
		return now
	}
	before := dbNow()
	rec, err := s.Put(ctx, &connect.Record{Connection: connect.Connection{ID: "urn:pleo:company:1", Account: "acc"}})
	require.NoError(t, err)
	claimed, ok, err := s.Claim(ctx, rec.ID, "a", rec.Version, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	after := dbNow()
	for _, r := range []*connect.Record{rec, claimed} {
		assert.False(t, r.ReadAt.Before(before) || r.ReadAt.After(after), "ReadAt %v not within the database's [%v, %v]", r.ReadAt, before, after)
	}
	assert.True(t, claimed.RefreshSentAt.Equal(claimed.ReadAt))
	assert.True(t, claimed.LeaseUntil.Equal(claimed.ReadAt.Add(time.Minute)))

	var leaseUntil, sentAt time.Time
	require.NoError(t, p.QueryRow(ctx, `SELECT lease_until, refresh_sent_at FROM pleooauth_connections`).Scan(&leaseUntil, &sentAt))
	assert.True(t, leaseUntil.Equal(claimed.LeaseUntil))
	assert.True(t, sentAt.Equal(claimed.RefreshSentAt))
}

// TestListByAccountUsesTheIndex: the statement List runs for one account
// is served by pleooauth_connections_by_account, not a scan of the table.
func TestListByAccountUsesTheIndex(t *testing.T) {
	ctx := t.Context()
	p := pool(t)
	s, err := pgstore.New(ctx, p)
	require.NoError(t, err)
	_, err = p.Exec(ctx, `INSERT INTO pleooauth_connections (id, account, status, created_at, updated_at, version)
		SELECT 'urn:pleo:company:' || i, 'account-' || (i % 200), 'active', now(), now(), 1
		FROM generate_series(1, 5000) AS i`)
	require.NoError(t, err)
	_, err = p.Exec(ctx, `ANALYZE pleooauth_connections`)
	require.NoError(t, err)

	conn, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	for i, q := range []connect.Query{
		{Account: "account-7"},
		{Account: "account-7", After: "urn:pleo:company:3", Limit: 10},
		{Account: "account-7", Status: connect.StatusActive},
	} {
		query, args, err := sqlstore.ListStatement(q)
		require.NoError(t, err)
		got, err := s.List(ctx, q)
		require.NoError(t, err)
		require.NotEmpty(t, got)
		_, err = conn.Exec(ctx, fmt.Sprintf(`PREPARE list%d AS %s`, i, query))
		require.NoError(t, err)
		literals := make([]string, len(args)) // EXECUTE takes no parameters
		for j, a := range args {
			switch a := a.(type) {
			case string:
				literals[j] = "'" + strings.ReplaceAll(a, "'", "''") + "'"
			default:
				literals[j] = fmt.Sprint(a)
			}
		}
		// A prepared statement's plan is made for its arguments (custom) or
		// for any (generic, as PostgreSQL may choose after five runs): both
		// must use the index.
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(fmt.Sprintf("%s/%+v", mode, q), func(t *testing.T) {
				_, err = conn.Exec(ctx, `SET plan_cache_mode = `+mode)
				require.NoError(t, err)
				var plan []byte
				require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`EXPLAIN (FORMAT JSON) EXECUTE list%d(%s)`, i, strings.Join(literals, ", "))).Scan(&plan))
				var out []struct{ Plan planNode }
				require.NoError(t, json.Unmarshal(plan, &out))
				require.Len(t, out, 1)
				scans := out[0].Plan.scans()
				assert.Contains(t, scans, "pleooauth_connections_by_account", "plan: %s", plan)
				assert.NotContains(t, scans, "Seq Scan", "plan: %s", plan)
			})
		}
	}
}

// TestDueUsesTheIndex: Due's statement reads the partial index on the
// active connections' keepalive_at, in its order, with no sequential scan
// and no sort, in a custom and in a generic plan: its cost is the rows it
// returns, not the table's size.
func TestDueUsesTheIndex(t *testing.T) {
	ctx := t.Context()
	p := pool(t)
	s, err := pgstore.New(ctx, p)
	require.NoError(t, err)
	// 20,000 connections: one in a hundred due, the others due within
	// days, a tenth of them not active.
	_, err = p.Exec(ctx, `INSERT INTO pleooauth_connections (id, account, status, created_at, updated_at, version, keepalive_at)
		SELECT 'urn:pleo:company:' || i, 'account-' || (i % 200), CASE WHEN i % 10 = 3 THEN 'disconnected' ELSE 'active' END,
			now(), now(), 1, CASE WHEN i % 100 = 0 THEN now() - interval '1 hour' ELSE now() + (1 + i % 97) * interval '1 hour' END
		FROM generate_series(1, 20000) AS i`)
	require.NoError(t, err)
	_, err = p.Exec(ctx, `ANALYZE pleooauth_connections`)
	require.NoError(t, err)
	due, err := s.Due(ctx, 100)
	require.NoError(t, err)
	require.Len(t, due, 100)
	for _, c := range due {
		assert.Equal(t, connect.StatusActive, c.Status)
	}

	conn, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `PREPARE due AS `+pgstore.DueStatement)
	require.NoError(t, err)
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		t.Run(mode, func(t *testing.T) {
			_, err = conn.Exec(ctx, `SET plan_cache_mode = `+mode)
			require.NoError(t, err)
			var plan []byte
			require.NoError(t, conn.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE due(NULL, 100)`).Scan(&plan))
			var out []struct{ Plan planNode }
			require.NoError(t, json.Unmarshal(plan, &out))
			require.Len(t, out, 1)
			assert.Equal(t, []string{"pleooauth_connections_keepalive"}, out[0].Plan.scans(), "plan: %s", plan)
			assert.NotContains(t, out[0].Plan.nodes(), "Sort", "plan: %s", plan)
		})
	}
}

// planNode is a node of EXPLAIN (FORMAT JSON)'s plan.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

// nodes returns the type of every node in the plan.
func (n planNode) nodes() []string {
	out := []string{n.NodeType}
	for _, c := range n.Plans {
		out = append(out, c.nodes()...)
	}
	return out
}

// scans returns the index each index scan in the plan uses, and "Seq
// Scan" for each sequential scan.
func (n planNode) scans() []string {
	var out []string
	switch n.NodeType {
	case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
		out = append(out, n.IndexName)
	case "Seq Scan":
		out = append(out, n.NodeType)
	}
	for _, c := range n.Plans {
		out = append(out, c.scans()...)
	}
	return out
}
