//! XEP-0004: Data Forms — the `<x xmlns='jabber:x:data'/>` payload that registration, MUC
//! configuration, ad-hoc commands, search and disco#info extensions (XEP-0128) all carry.
//!
//! Parsing keeps what it does not model: children of `<x/>` and `<field/>` that are not
//! data-forms elements we know (XEP-0221 media, XEP-0122 validation, `<reported/>` and
//! `<item/>` tables) are stored as elements and written back after the modelled ones.
//! Unknown attributes are ignored. Fields keep document order, which XEP-0004 §3.2 makes
//! the presentation order and XEP-0115 §5.4 relies on before it sorts.

use crate::ns;
use crate::xml::Element;

/// The `var` of the field naming a form's type (XEP-0068 §3).
pub const FORM_TYPE: &str = "FORM_TYPE";

/// Why an element is not a data form we can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Not `<x xmlns='jabber:x:data'/>`.
    #[error("not a jabber:x:data <x/> element")]
    WrongElement,
    /// `<x/>` without its required `type` (XEP-0004 §3.1).
    #[error("data form without a type")]
    MissingType,
    /// A `type` other than form, submit, cancel or result.
    #[error("unknown data form type {0:?}")]
    UnknownType(String),
    /// A field other than `fixed` without `var` (XEP-0004 §3.2: it MUST have one).
    #[error("data form field without var")]
    MissingVar,
    /// An `<option/>` without its one `<value/>` (XEP-0004 §3.2).
    #[error("data form option without a value")]
    OptionWithoutValue,
}

/// The `type` of a form (XEP-0004 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormType {
    /// The processing entity asks for the form to be filled in.
    Form,
    /// The submitting entity sends its data.
    Submit,
    /// The submitting entity gives up.
    Cancel,
    /// Results, or a data set (e.g. a disco#info extension).
    Result,
}

impl FormType {
    /// The attribute value, e.g. `"submit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Cancel => "cancel",
            FormType::Result => "result",
        }
    }

    /// The type named by an attribute value, if it is one of the four.
    pub fn from_attr(value: &str) -> Option<FormType> {
        match value {
            "form" => Some(FormType::Form),
            "submit" => Some(FormType::Submit),
            "cancel" => Some(FormType::Cancel),
            "result" => Some(FormType::Result),
            _ => None,
        }
    }
}

/// The `type` of a field (XEP-0004 §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each known variant is the field type of the same name in §3.3.
pub enum FieldType {
    Boolean,
    Fixed,
    Hidden,
    JidMulti,
    JidSingle,
    ListMulti,
    ListSingle,
    TextMulti,
    TextPrivate,
    TextSingle,
    /// A type this module does not know, kept as written so it is sent back unchanged
    /// (§3.3: a receiver treats it as `text-single`).
    Other(String),
}

impl FieldType {
    /// The attribute value, e.g. `"list-single"`.
    pub fn as_str(&self) -> &str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidMulti => "jid-multi",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
            FieldType::Other(other) => other,
        }
    }

    /// The type named by an attribute value; unknown names become [`FieldType::Other`].
    pub fn from_attr(value: &str) -> FieldType {
        match value {
            "boolean" => FieldType::Boolean,
            "fixed" => FieldType::Fixed,
            "hidden" => FieldType::Hidden,
            "jid-multi" => FieldType::JidMulti,
            "jid-single" => FieldType::JidSingle,
            "list-multi" => FieldType::ListMulti,
            "list-single" => FieldType::ListSingle,
            "text-multi" => FieldType::TextMulti,
            "text-private" => FieldType::TextPrivate,
            "text-single" => FieldType::TextSingle,
            other => FieldType::Other(other.to_owned()),
        }
    }
}

/// One `<field/>` (XEP-0004 §3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    /// The field's name; absent only on `fixed` fields.
    pub var: Option<String>,
    /// The declared type. `None` when the attribute is absent, which `submit` forms may do
    /// and which means `text-single` elsewhere (§3.2); kept apart so it is not invented on
    /// the way back.
    pub field_type: Option<FieldType>,
    /// Human-readable name.
    pub label: Option<String>,
    /// `<desc/>`: a longer human-readable description.
    pub desc: Option<String>,
    /// `<required/>` is present.
    pub required: bool,
    /// The `<value/>`s in order (several for the `*-multi` and hidden types).
    pub values: Vec<String>,
    /// The `<option/>`s of a list field: `(label, value)`.
    pub options: Vec<(Option<String>, String)>,
    /// Children we do not model, written back after the options.
    pub other: Vec<Element>,
}

impl Field {
    /// A field named `var`, without type or values.
    pub fn new(var: impl Into<String>) -> Field {
        Field {
            var: Some(var.into()),
            ..Field::default()
        }
    }

    /// A hidden field with one value, e.g. `FORM_TYPE` (XEP-0068 §3).
    pub fn hidden(var: impl Into<String>, value: impl Into<String>) -> Field {
        Field::new(var)
            .with_type(FieldType::Hidden)
            .with_value(value)
    }

    /// Builder: sets the type.
    pub fn with_type(mut self, field_type: FieldType) -> Field {
        self.field_type = Some(field_type);
        self
    }

    /// Builder: sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Field {
        self.label = Some(label.into());
        self
    }

    /// Builder: sets the description.
    pub fn with_desc(mut self, desc: impl Into<String>) -> Field {
        self.desc = Some(desc.into());
        self
    }

    /// Builder: marks the field required.
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// Builder: appends a value.
    pub fn with_value(mut self, value: impl Into<String>) -> Field {
        self.values.push(value.into());
        self
    }

    /// Builder: appends an option.
    pub fn with_option(mut self, label: Option<&str>, value: impl Into<String>) -> Field {
        self.options.push((label.map(str::to_owned), value.into()));
        self
    }

    /// The first value, if any.
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }

    fn parse(el: &Element) -> Result<Field, FormError> {
        let mut field = Field {
            var: el.attr("var").map(str::to_owned),
            field_type: el.attr("type").map(FieldType::from_attr),
            label: el.attr("label").map(str::to_owned),
            ..Field::default()
        };
        if field.var.is_none() && field.field_type != Some(FieldType::Fixed) {
            return Err(FormError::MissingVar);
        }
        for child in el.children() {
            match (child.ns() == ns::DATA_FORMS, child.name()) {
                (true, "desc") if field.desc.is_none() => field.desc = Some(child.text()),
                (true, "required") => field.required = true,
                (true, "value") => field.values.push(child.text()),
                (true, "option") => {
                    let value = child
                        .get_child("value", ns::DATA_FORMS)
                        .ok_or(FormError::OptionWithoutValue)?;
                    field
                        .options
                        .push((child.attr("label").map(str::to_owned), value.text()));
                }
                _ => field.other.push(child.clone()),
            }
        }
        Ok(field)
    }

    /// Children in the order of the XEP-0004 schema: desc, required, values, options.
    fn to_element(&self) -> Element {
        let mut el = Element::new("field", ns::DATA_FORMS);
        if let Some(var) = &self.var {
            el.set_attr("var", var.as_str());
        }
        if let Some(field_type) = &self.field_type {
            el.set_attr("type", field_type.as_str());
        }
        if let Some(label) = &self.label {
            el.set_attr("label", label.as_str());
        }
        if let Some(desc) = &self.desc {
            el.push_child(Element::new("desc", ns::DATA_FORMS).with_text(desc.as_str()));
        }
        if self.required {
            el.push_child(Element::new("required", ns::DATA_FORMS));
        }
        for value in &self.values {
            el.push_child(value_element(value));
        }
        for (label, value) in &self.options {
            let mut option = Element::new("option", ns::DATA_FORMS);
            if let Some(label) = label {
                option.set_attr("label", label.as_str());
            }
            el.push_child(option.with_child(value_element(value)));
        }
        for other in &self.other {
            el.push_child(other.clone());
        }
        el
    }
}

fn value_element(value: &str) -> Element {
    Element::new("value", ns::DATA_FORMS).with_text(value)
}

/// A data form: `<x xmlns='jabber:x:data' type='…'/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataForm {
    /// What the form is for in the exchange.
    pub form_type: FormType,
    /// `<title/>`.
    pub title: Option<String>,
    /// `<instructions/>`, which may repeat (§3).
    pub instructions: Vec<String>,
    /// The fields in document order.
    pub fields: Vec<Field>,
    /// Children we do not model (`<reported/>`, `<item/>`, other namespaces), written back
    /// after the fields, where the schema puts `<reported/>` and `<item/>`.
    pub other: Vec<Element>,
}

impl DataForm {
    /// An empty form of this type.
    pub fn new(form_type: FormType) -> DataForm {
        DataForm {
            form_type,
            title: None,
            instructions: Vec::new(),
            fields: Vec::new(),
            other: Vec::new(),
        }
    }

    /// Builder: sets the hidden `FORM_TYPE` field (XEP-0068 §3), replacing an existing one
    /// or else putting it first, where every XEP's examples have it.
    pub fn with_form_type(mut self, form_type: impl Into<String>) -> DataForm {
        let field = Field::hidden(FORM_TYPE, form_type);
        match self
            .fields
            .iter_mut()
            .find(|f| f.var.as_deref() == Some(FORM_TYPE))
        {
            Some(slot) => *slot = field,
            None => self.fields.insert(0, field),
        }
        self
    }

    /// Builder: sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> DataForm {
        self.title = Some(title.into());
        self
    }

    /// Builder: appends an instruction.
    pub fn with_instructions(mut self, instructions: impl Into<String>) -> DataForm {
        self.instructions.push(instructions.into());
        self
    }

    /// Builder: appends a field.
    pub fn with_field(mut self, field: Field) -> DataForm {
        self.fields.push(field);
        self
    }

    /// The value of the `FORM_TYPE` field when it carries its XEP-0068 meaning: the field
    /// must be hidden, except that in a `submit` form, where types may be left out
    /// (XEP-0004 §3.2), an untyped one counts too (XEP-0068 §5).
    pub fn form_type_field(&self) -> Option<&str> {
        let field = self.field(FORM_TYPE)?;
        let special = match &field.field_type {
            Some(FieldType::Hidden) => true,
            None => self.form_type == FormType::Submit,
            Some(_) => false,
        };
        if special {
            field.value()
        } else {
            None
        }
    }

    /// The first field named `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The first value of the field named `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.field(var)?.value()
    }

    /// Reads `<x xmlns='jabber:x:data'/>`.
    pub fn parse(el: &Element) -> Result<DataForm, FormError> {
        if !el.is("x", ns::DATA_FORMS) {
            return Err(FormError::WrongElement);
        }
        let type_attr = el.attr("type").ok_or(FormError::MissingType)?;
        let form_type = FormType::from_attr(type_attr)
            .ok_or_else(|| FormError::UnknownType(type_attr.to_owned()))?;
        let mut form = DataForm::new(form_type);
        for child in el.children() {
            match (child.ns() == ns::DATA_FORMS, child.name()) {
                (true, "title") if form.title.is_none() => form.title = Some(child.text()),
                (true, "instructions") => form.instructions.push(child.text()),
                (true, "field") => form.fields.push(Field::parse(child)?),
                _ => form.other.push(child.clone()),
            }
        }
        Ok(form)
    }

    /// Writes `<x/>`: title, instructions, fields, then the children kept unparsed.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("x", ns::DATA_FORMS).with_attr("type", self.form_type.as_str());
        if let Some(title) = &self.title {
            el.push_child(Element::new("title", ns::DATA_FORMS).with_text(title.as_str()));
        }
        for instructions in &self.instructions {
            el.push_child(
                Element::new("instructions", ns::DATA_FORMS).with_text(instructions.as_str()),
            );
        }
        for field in &self.fields {
            el.push_child(field.to_element());
        }
        for other in &self.other {
            el.push_child(other.clone());
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn element(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    fn bytes(el: &Element) -> String {
        String::from_utf8(el.to_bytes(ns::CLIENT)).unwrap()
    }

    /// Written in our own serialisation, so parsing then writing must give it back byte for
    /// byte.
    const CONFIG_FORM: &str = concat!(
        r#"<x xmlns="jabber:x:data" type="form">"#,
        r#"<title>Room configuration</title>"#,
        r#"<instructions>Fill in the fields.</instructions>"#,
        r#"<instructions>Then submit.</instructions>"#,
        r#"<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/muc#roomconfig</value></field>"#,
        r#"<field type="fixed"><value>Section 1</value></field>"#,
        r#"<field var="muc#roomconfig_roomname" type="text-single" label="Name"><desc>Shown to users</desc><required/></field>"#,
        r#"<field var="muc#roomconfig_maxusers" type="list-single" label="Max &lt;users&gt;"><value>20</value>"#,
        r#"<option label="Ten"><value>10</value></option><option><value>20</value></option></field>"#,
        r#"<field var="muc#roomconfig_roomadmins" type="jid-multi"><value>a@example.com</value><value>b@example.com</value></field>"#,
        r#"<field var="captcha" type="x-vendor-image"><value/></field>"#,
        r#"</x>"#
    );

    #[test]
    fn parses_every_part_of_a_form() {
        let form = DataForm::parse(&element(CONFIG_FORM)).unwrap();
        assert_eq!(form.form_type, FormType::Form);
        assert_eq!(form.title.as_deref(), Some("Room configuration"));
        assert_eq!(form.instructions, ["Fill in the fields.", "Then submit."]);
        assert_eq!(
            form.form_type_field(),
            Some("http://jabber.org/protocol/muc#roomconfig")
        );
        assert_eq!(form.fields.len(), 6);
        assert_eq!(form.fields[1].var, None);
        assert_eq!(form.fields[1].field_type, Some(FieldType::Fixed));
        let name = form.field("muc#roomconfig_roomname").unwrap();
        assert_eq!(name.label.as_deref(), Some("Name"));
        assert_eq!(name.desc.as_deref(), Some("Shown to users"));
        assert!(name.required);
        assert!(name.values.is_empty());
        let max = form.field("muc#roomconfig_maxusers").unwrap();
        assert_eq!(max.label.as_deref(), Some("Max <users>"));
        assert_eq!(
            max.options,
            [
                (Some("Ten".to_owned()), "10".to_owned()),
                (None, "20".to_owned())
            ]
        );
        assert_eq!(form.value("muc#roomconfig_maxusers"), Some("20"));
        assert_eq!(
            form.field("muc#roomconfig_roomadmins").unwrap().values,
            ["a@example.com", "b@example.com"]
        );
        let captcha = form.field("captcha").unwrap();
        assert_eq!(
            captcha.field_type,
            Some(FieldType::Other("x-vendor-image".to_owned()))
        );
        assert_eq!(captcha.values, [""]);
        assert_eq!(form.value("absent"), None);
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let form = DataForm::parse(&element(CONFIG_FORM)).unwrap();
        assert_eq!(bytes(&form.to_element()), CONFIG_FORM);
    }

    #[test]
    fn builds_a_result_with_form_type() {
        let form = DataForm::new(FormType::Result)
            .with_field(Field::new("admin-addresses").with_value("mailto:admin@example.com"))
            .with_form_type("urn:example:old")
            .with_form_type("http://jabber.org/network/serverinfo");
        assert_eq!(
            bytes(&form.to_element()),
            concat!(
                r#"<x xmlns="jabber:x:data" type="result">"#,
                r#"<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/network/serverinfo</value></field>"#,
                r#"<field var="admin-addresses"><value>mailto:admin@example.com</value></field>"#,
                r#"</x>"#
            )
        );
        let built = DataForm::new(FormType::Form)
            .with_title("T")
            .with_instructions("I")
            .with_field(
                Field::new("v")
                    .with_type(FieldType::ListSingle)
                    .with_label("L")
                    .with_desc("D")
                    .required()
                    .with_value("a")
                    .with_option(Some("A"), "a")
                    .with_option(None, "b"),
            );
        assert_eq!(
            DataForm::parse(&built.to_element()).as_ref(),
            Ok(&built),
            "what the builders make survives a round trip"
        );
    }

    #[test]
    fn form_type_needs_a_hidden_field_except_in_submit() {
        let untyped = Field::new(FORM_TYPE).with_value("urn:example:form");
        let submit = DataForm::new(FormType::Submit).with_field(untyped.clone());
        assert_eq!(submit.form_type_field(), Some("urn:example:form"));
        let result = DataForm::new(FormType::Result).with_field(untyped);
        assert_eq!(result.form_type_field(), None);
        let visible = DataForm::new(FormType::Submit).with_field(
            Field::new(FORM_TYPE)
                .with_type(FieldType::TextSingle)
                .with_value("urn:example:form"),
        );
        assert_eq!(visible.form_type_field(), None);
        assert_eq!(DataForm::new(FormType::Form).form_type_field(), None);
    }

    #[test]
    fn keeps_unknown_children_and_ignores_unknown_attributes() {
        let xml = concat!(
            r#"<x xmlns="jabber:x:data" type="result" extra="1">"#,
            r#"<field var="ocr" extra="2"><media xmlns="urn:xmpp:media-element" height="80">"#,
            r#"<uri type="image/jpeg">cid:sha1+abc@bob.xmpp.org</uri></media><value>x</value></field>"#,
            r#"<reported><field var="jid" type="jid-single" label="JID"/></reported>"#,
            r#"<item><field var="jid"><value>a@example.com</value></field></item>"#,
            r#"<title xmlns="urn:example:other">not ours</title>"#,
            r#"</x>"#
        );
        let form = DataForm::parse(&element(xml)).unwrap();
        assert_eq!(form.title, None);
        assert_eq!(
            form.other
                .iter()
                .map(|e| (e.name(), e.ns()))
                .collect::<Vec<_>>(),
            [
                ("reported", ns::DATA_FORMS),
                ("item", ns::DATA_FORMS),
                ("title", "urn:example:other")
            ]
        );
        let ocr = form.field("ocr").unwrap();
        assert_eq!(ocr.values, ["x"]);
        assert_eq!(ocr.other.len(), 1);
        // Unknown attributes are gone; the media element now follows the value (schema
        // order); everything else is as it was.
        assert_eq!(
            bytes(&form.to_element()),
            concat!(
                r#"<x xmlns="jabber:x:data" type="result">"#,
                r#"<field var="ocr"><value>x</value><media xmlns="urn:xmpp:media-element" height="80">"#,
                r#"<uri type="image/jpeg">cid:sha1+abc@bob.xmpp.org</uri></media></field>"#,
                r#"<reported><field var="jid" type="jid-single" label="JID"/></reported>"#,
                r#"<item><field var="jid"><value>a@example.com</value></field></item>"#,
                r#"<title xmlns="urn:example:other">not ours</title>"#,
                r#"</x>"#
            )
        );
    }

    #[test]
    fn bad_forms_give_typed_errors() {
        let cases = [
            (
                r#"<x xmlns="jabber:x:other" type="form"/>"#,
                FormError::WrongElement,
            ),
            (
                r#"<form xmlns="jabber:x:data" type="form"/>"#,
                FormError::WrongElement,
            ),
            (r#"<x xmlns="jabber:x:data"/>"#, FormError::MissingType),
            (
                r#"<x xmlns="jabber:x:data" type="Form"/>"#,
                FormError::UnknownType("Form".to_owned()),
            ),
            (
                r#"<x xmlns="jabber:x:data" type="submit"><field><value>1</value></field></x>"#,
                FormError::MissingVar,
            ),
            (
                r#"<x xmlns="jabber:x:data" type="form"><field var="a" type="list-single"><option label="x"/></field></x>"#,
                FormError::OptionWithoutValue,
            ),
        ];
        for (xml, expected) in cases {
            assert_eq!(DataForm::parse(&element(xml)), Err(expected), "{xml}");
        }
    }

    #[test]
    fn field_types_round_trip_their_names() {
        let names = [
            "boolean",
            "fixed",
            "hidden",
            "jid-multi",
            "jid-single",
            "list-multi",
            "list-single",
            "text-multi",
            "text-private",
            "text-single",
        ];
        for name in names {
            let parsed = FieldType::from_attr(name);
            assert!(!matches!(parsed, FieldType::Other(_)), "{name}");
            assert_eq!(parsed.as_str(), name);
        }
        assert_eq!(FieldType::from_attr("x-new").as_str(), "x-new");
        for t in [
            FormType::Form,
            FormType::Submit,
            FormType::Cancel,
            FormType::Result,
        ] {
            assert_eq!(FormType::from_attr(t.as_str()), Some(t));
        }
    }
}
