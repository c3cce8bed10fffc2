package connect_test

import (
	"testing"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) connect.Store { return connect.NewMemoryStore() })
}
