//! Access control: who may use a command that names a `permission`, in the original's ACL shape
//! (reference §1.7), with identities that a nick change cannot fake.
//!
//! An ACL is `{"groups": {"@ops": [member, ...]}, "permissions": {selector: [pattern, ...]}}`.
//! A selector picks senders by user, `@group` and `#channel`; a pattern allows (or, with a
//! leading `-`, denies) dotted permission names, `*` standing for a segment. A deny beats any
//! allow, and what no pattern allows is denied. Owners hold every permission, and without an
//! ACL nobody else holds any.

mod pattern;
mod policy;
mod selector;

pub use pattern::{Pattern, Verdict};
pub use policy::{Access, Acl, AclProblem};
pub use selector::{Member, Selector, Strength};
