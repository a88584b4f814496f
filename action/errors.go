package action

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
)

// typeNames caches the exception name of each error type.
var typeNames sync.Map // reflect.Type -> string

// exceptionName names err's type for the "exception" field: the first error
// in the chain that is not a plain fmt.Errorf wrapper, as
// "import/path.TypeName".
func exceptionName(err error) string {
	for {
		if p, ok := err.(panicError); ok {
			return p.name
		}
		if !isPlainWrapper(err) {
			break
		}
		inner := errors.Unwrap(err)
		if inner == nil {
			if multi, ok := err.(interface{ Unwrap() []error }); ok {
				if errs := multi.Unwrap(); len(errs) == 1 {
					inner = errs[0]
				}
			}
		}
		if inner == nil {
			break
		}
		err = inner
	}
	return typeName(reflect.TypeOf(err))
}

// isPlainWrapper reports whether err is one of fmt's wrapper types, which add
// text but name nothing.
func isPlainWrapper(err error) bool {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() == "fmt" && (t.Name() == "wrapError" || t.Name() == "wrapErrors")
}

// panicName names the type of a panic value.
func panicName(r any) string {
	if err, ok := r.(error); ok {
		return exceptionName(err)
	}
	return typeName(reflect.TypeOf(r))
}

// typeName returns "import/path.Name" for t (the element type for a
// pointer), or Go's own spelling for unnamed and builtin types.
func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	if name, ok := typeNames.Load(t); ok {
		return name.(string)
	}
	base := t
	for base.Kind() == reflect.Pointer && base.Name() == "" {
		base = base.Elem()
	}
	var name string
	if base.Name() != "" && base.PkgPath() != "" {
		name = base.PkgPath() + "." + base.Name()
	} else {
		name = fmt.Sprint(base)
	}
	typeNames.Store(t, name)
	return name
}

// appendErrorFields appends the attributes of err's slog value when err (or
// an error in its chain) implements slog.LogValuer, like Eliot's exception
// extractors.
func (e encoder) appendErrorFields(b []byte, err error) []byte {
	var lv slog.LogValuer
	for err != nil {
		if v, ok := err.(slog.LogValuer); ok {
			lv = v
			break
		}
		err = errors.Unwrap(err)
	}
	if lv == nil {
		return b
	}
	v := slog.AnyValue(lv).Resolve()
	if v.Kind() != slog.KindGroup {
		return e.appendUserAttr(b, slog.Attr{Key: "error_value", Value: v})
	}
	return e.appendUserAttrs(b, v.Group())
}

// reservedField reports whether key is a standard field that a user field
// must not overwrite.
func reservedField(key string) bool {
	switch key {
	case "task_uuid", "task_level", "timestamp", "action_type", "action_status", "message_type", "workflow_id":
		return true
	}
	return false
}

// appendUserAttrs appends top-level user fields. A field named like a
// standard field is written as "user_<name>" so it cannot change the
// message's place in its tree.
func (e encoder) appendUserAttrs(b []byte, attrs []slog.Attr) []byte {
	for _, a := range attrs {
		b = e.appendUserAttr(b, a)
	}
	return b
}

func (e encoder) appendUserAttr(b []byte, a slog.Attr) []byte {
	if a.Key == "" {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			return e.appendUserAttrs(b, v.Group())
		}
	} else if reservedField(a.Key) {
		a.Key = "user_" + a.Key
	}
	return e.appendAttr(b, a)
}
