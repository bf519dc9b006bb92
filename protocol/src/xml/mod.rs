//! XML: the element tree, its serialisation, and the incremental stream reader.
//!
//! Layout:
//! - `element.rs`: [`Element`] and [`Node`];
//! - `escape.rs`: escaping for output, entity resolution for input;
//! - `writer.rs`: serialisation rules (namespaces, `stream:` prefix);
//! - `scope.rs`: namespace prefix bindings;
//! - `scanner.rs`: byte-level framing of complete units, with limits;
//! - `tree.rs`: parsing one complete unit with quick-xml;
//! - [`reader`]: the public [`reader::StreamReader`] tying scanner and parser together.

mod element;
mod escape;
pub mod reader;
mod scanner;
pub(crate) mod scope;
pub(crate) mod tree;
pub(crate) mod writer;

pub use element::{Element, Node};
