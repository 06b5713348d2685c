//! UniFFI bindings of the client SDK (Swift, Kotlin). Not built yet: see the client SDK issue.
