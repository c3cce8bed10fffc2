package pleooauthtest

import (
	"html/template"
	"net/http"
	"net/url"
)

var consentTemplate = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorise {{.ClientName}} · Pleo (test)</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
fieldset{border:1px solid #ccc;padding:1rem}button{margin-right:.5rem}</style></head>
<body><h1>Authorise {{.ClientName}}</h1>
<p>{{.ClientName}} asks for access to your Pleo company: {{.Scope}}.</p>
<form method="post" action="{{.Action}}">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<fieldset><legend>Company</legend>
{{range $i, $c := .Companies}}<div><input type="radio" id="company-{{$i}}" name="subject" value="{{$c.Subject}}"{{if eq $i 0}} checked{{end}}>
<label for="company-{{$i}}">{{$c.Name}}</label></div>{{end}}
</fieldset>
<p><button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form></body></html>
`))

// consentPage shows the consent page for an authorization request whose
// parameters q are valid.
func (s *Server) consentPage(w http.ResponseWriter, r *http.Request, clientID string, c *client, q url.Values) {
	s.record(r, clientID, http.StatusOK, "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentTemplate.Execute(w, map[string]any{
		"ClientName": c.reg.ClientName,
		"Scope":      q.Get("scope"),
		"Action":     authorizePath,
		"Params":     q,
		"Companies":  s.opts.companies,
	})
}
