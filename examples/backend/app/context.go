package app

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"
)

// contextWithClient is the context x/oauth2 reads its HTTP client from.
func contextWithClient(c *http.Client) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, c)
}
