package pgstore

import "github.com/partnerkit/pleooauth/connect/internal/sqlstore"

// DueStatement is the statement Due runs, for the test that reads its
// plan.
var DueStatement = sqlstore.DueStatement(driver{})
