package pgstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/internal/pgtest"
)

// BenchmarkDue is one keep-alive sweep's read, Due(100), as the table of
// connections grows: one in a hundred due, the others due within days, a
// tenth not active. Its cost must not grow with the table (the partial
// index on keepalive_at is read in order and left after the limit):
//
//	go test -run '^$' -bench '^BenchmarkDue$' -benchmem ./connect/pgstore
//
// with PLEOOAUTH_TEST_POSTGRES set.
func BenchmarkDue(b *testing.B) {
	for _, rows := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			p, err := pgxpool.New(ctx, pgtest.Database(b))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			s, err := pgstore.New(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Exec(ctx, `INSERT INTO pleooauth_connections (id, account, status, created_at, updated_at, version, keepalive_at)
				SELECT 'urn:pleo:company:' || i, 'account-' || (i % 200), CASE WHEN i % 10 = 3 THEN 'disconnected' ELSE 'active' END,
					now(), now(), 1, CASE WHEN i % 100 = 0 THEN now() - interval '1 hour' ELSE now() + (1 + i % 97) * interval '1 hour' END
				FROM generate_series(1, $1::int) AS i`, rows); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Exec(ctx, `ANALYZE pleooauth_connections`); err != nil {
				b.Fatal(err)
			}
			want := min(rows/100, 100)
			b.ReportAllocs()
			for b.Loop() {
				due, err := s.Due(ctx, 100)
				if err != nil || len(due) != want {
					b.Fatalf("Due: %d connections, %v; want %d", len(due), err, want)
				}
			}
		})
	}
}
