// Package sqlrows reads query results into connections for the SQL
// stores, whichever driver's rows they have.
package sqlrows

import "github.com/partnerkit/pleooauth/connect"

// Rows is what pgx.Rows and *sql.Rows have in common.
type Rows interface {
	Next() bool
	Err() error
}

// Connections scans every row with scan and returns the connections. The
// caller closes rows.
func Connections[R Rows](rows R, scan func(R) (*connect.Record, error)) ([]connect.Connection, error) {
	var out []connect.Connection
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Connection)
	}
	return out, rows.Err()
}
