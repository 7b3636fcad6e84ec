package server

import (
	"net/http"

	"github.com/shoalstream/shoal/internal/audit"
	"github.com/shoalstream/shoal/internal/wire"
)

// auditCall writes the audit record of one call (Config.AuditLog): every
// management call, and the data calls with Config.AuditDataEvents. out is
// the call's response (nil on error), err its error.
func (s *Server) auditCall(c *caller, r *http.Request, reqID string, out any, err error) {
	if s.audit == nil || c == nil {
		return
	}
	data := audit.IsDataEvent(c.op)
	if data && !s.cfg.AuditDataEvents {
		return
	}
	rec := &audit.Record{
		EventVersion:       audit.EventVersion,
		EventTime:          s.cfg.Now().UTC(),
		EventSource:        audit.EventSource,
		EventName:          c.op,
		AWSRegion:          s.cfg.Region,
		SourceIPAddress:    c.sourceIP.String(),
		UserAgent:          r.UserAgent(),
		RequestID:          reqID,
		ReadOnly:           audit.ReadOnly(c.op),
		EventType:          audit.EventType,
		ManagementEvent:    !data,
		RecipientAccountID: c.account,
		EventCategory:      audit.CategoryManagement,
		UserIdentity:       s.identity(c),
	}
	if data {
		rec.EventCategory = audit.CategoryData
	}
	if c.resourceARN != "" {
		rec.RecipientAccountID = c.resourceAcct
		typ := audit.ResourceTypeStream
		if c.consumer {
			typ = audit.ResourceTypeStreamConsumer
		}
		rec.Resources = []audit.Resource{{AccountID: c.resourceAcct, Type: typ, ARN: c.resourceARN}}
	}
	if c.input != nil {
		rec.RequestParameters = audit.RequestParameters(c.input)
	}
	if err != nil {
		ae, _ := asAPIError(err)
		rec.ErrorCode, rec.ErrorMessage = ae.Code, ae.Message
	} else if _, empty := out.(*wire.Empty); !data && !rec.ReadOnly && out != nil && !empty {
		rec.ResponseElements = audit.RequestParameters(out)
	}
	if r.TLS != nil {
		rec.TLSDetails = audit.TLSDetailsOf(r.TLS, r.Host)
	}
	s.audit.Write(rec)
}

// identity is the audit record's userIdentity of c.
func (s *Server) identity(c *caller) audit.UserIdentity {
	if c.principal == nil && s.auth.Load() != nil {
		// The request did not authenticate: nobody is known.
		return audit.UserIdentity{Type: "Unknown"}
	}
	if c.principal == nil {
		// Verification is off: nothing says who called.
		return audit.AnonymousIdentity()
	}
	p := c.principal
	return audit.UserIdentity{Type: "IAMUser", PrincipalID: c.accessKeyID, ARN: p.ARN, AccountID: p.AccountID, AccessKeyID: c.accessKeyID, UserName: p.Name}
}
