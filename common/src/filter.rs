//! Content filters: an endpoint's `filter` is an expression in the Common
//! Expression Language (CEL, the `cel` crate) over the event, and the
//! endpoint receives only the events it holds true for.
//!
//! A filter names two variables: `type` (the event type, a string) and
//! `data` (its payload; JSON integers are `int`, or `uint` beyond
//! `i64`, other numbers `double`). It is checked when it is written
//! ([`compile`]): it must parse, name no other variable, call only the
//! functions in [`FUNCTIONS`], and be able to yield a bool (a literal, a
//! list, a map or arithmetic at its root cannot). The `cel` crate has no
//! type checker of its own, so those checks walk the parsed expression.
//!
//! At fan-out ([`Matcher`]) the event's data is parsed once and bound to a
//! context, and each filter is compiled once per process and text
//! ([`cached`]: an endpoint's new filter is a new text) and evaluated
//! against it. An evaluation that fails (a missing field, a wrong type) or
//! yields something other than a bool means "no match", and is counted in
//! `hookfleet_filter_errors_total`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::{Context, Env, Program, Value};
use prometheus::IntCounter;

/// The longest filter, in bytes. It also keeps the parser's recursion
/// (and the stack it needs) small.
pub const MAX_FILTER_BYTES: usize = 2048;

/// The deepest a filter's expression may nest. Evaluation recurses once
/// per level on the calling thread (an API or worker task), so the depth
/// is what bounds the stack it needs.
pub const MAX_DEPTH: usize = 48;

/// The stack of the thread a filter is compiled on: the parser recurses
/// deeply on nested input before it gives up, more than a task's stack
/// holds in a debug build (only the pages used are ever touched).
const COMPILE_STACK: usize = 64 << 20;

/// The variables a filter may name.
pub const VARIABLES: &[&str] = &["type", "data"];

/// The functions a filter may call, by the names the parser gives them:
/// operators (`_&&_`, `_==_`, `@in`, ...), the macros' expansions (`has`,
/// `all`, `exists`, `exists_one`, `map`, `filter`), and the string, size
/// and conversion functions. Regular expressions (`matches`) and
/// timestamps are left out: compiling a pattern on every evaluation would
/// let one tenant's filter cost every publish a great deal.
pub const FUNCTIONS: &[&str] = &[
    "_&&_",
    "_||_",
    "!_",
    "_?_:_",
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "-_",
    "_[_]",
    "@in",
    "@not_strictly_false",
    "size",
    "startsWith",
    "endsWith",
    "contains",
    "int",
    "uint",
    "double",
    "string",
];

/// Operators whose result is never a bool: a filter cannot be one of them.
const NOT_BOOL: &[&str] = &[
    "_+_", "_-_", "_*_", "_/_", "_%_", "-_", "size", "int", "uint", "double", "string",
];

/// The standard environment every filter compiles and runs in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Filter evaluations at fan-out, those that matched, and those that
/// failed (each counted as no match). Registered by both binaries.
pub static EVALUATIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "hookfleet_filter_evaluations_total",
        "Content filters evaluated at fan-out (one per event and filtered endpoint of its type).",
    )
});
pub static MATCHED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "hookfleet_filter_matches_total",
        "Filter evaluations that matched: the event was delivered to the endpoint.",
    )
});
pub static ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "hookfleet_filter_errors_total",
        "Filter evaluations that failed (a missing field, a wrong type, not a bool): each counts as no match.",
    )
});

fn counter(name: &'static str, help: &'static str) -> IntCounter {
    // Fixed, valid names: creation cannot fail (a test registers them).
    IntCounter::new(name, help).expect("a valid metric name")
}

/// Registers the filter counters in a binary's registry.
pub fn register(registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
    for counter in [&*EVALUATIONS, &*MATCHED, &*ERRORS] {
        registry.register(Box::new(counter.clone()))?;
    }
    Ok(())
}

/// Why a filter is refused: where (1-based line and column, in
/// characters) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Compiles and checks a filter (see the module's header), on a thread of
/// its own with a large stack: however the text nests, a refusal, never a
/// crash. A filter nested deeper than [`MAX_DEPTH`] is refused there too
/// (and dropped there, its drop being as recursive as its parse).
pub fn compile(source: &str) -> Result<Program, FilterError> {
    let failed = |message: &str| FilterError {
        line: 1,
        column: 1,
        message: message.to_string(),
    };
    let text = source.to_string();
    std::thread::Builder::new()
        .name("filter-compile".into())
        .stack_size(COMPILE_STACK)
        .spawn(move || compile_here(&text))
        .map_err(|_| failed("could not be compiled now; try again"))?
        .join()
        .unwrap_or_else(|_| Err(failed("could not be compiled")))
}

fn compile_here(source: &str) -> Result<Program, FilterError> {
    if source.len() > MAX_FILTER_BYTES {
        return Err(FilterError {
            line: 1,
            column: 1,
            message: format!("at most {MAX_FILTER_BYTES} bytes"),
        });
    }
    if source.trim().is_empty() {
        return Err(FilterError {
            line: 1,
            column: 1,
            message: "must not be empty (use null for no filter)".into(),
        });
    }
    let program = ENV.compile(source).map_err(|errors| {
        let first = errors.errors.first();
        let (line, column) = first.map_or((1, 1), |e| (e.pos.0.max(1), e.pos.1.max(1)));
        let message = first.map_or_else(|| "does not parse".to_string(), |e| tidy(&e.msg));
        FilterError {
            line: line as usize,
            column: column as usize,
            message,
        }
    })?;
    let at = |id: u64| {
        let offset = program
            .source_info()
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize);
        line_column(source, offset)
    };
    let mut problem = None;
    check(
        program.expression(),
        1,
        &mut Vec::new(),
        &mut |id, message| {
            if problem.is_none() {
                let (line, column) = at(id);
                problem = Some(FilterError {
                    line,
                    column,
                    message,
                });
            }
        },
    );
    if let Some(problem) = problem {
        return Err(problem);
    }
    let root = program.expression();
    if let Some(kind) = never_bool(&root.expr) {
        let (line, column) = at(root.id);
        return Err(FilterError {
            line,
            column,
            message: format!("must be true or false for an event; this is {kind}"),
        });
    }
    Ok(program)
}

/// The parser's message without its internal detail (e.g. the recursion
/// limit's error is wrapped in a debug dump).
fn tidy(message: &str) -> String {
    if message.contains("Recursion limit") {
        return format!("nested too deeply (at most {MAX_DEPTH} levels)");
    }
    message.chars().take(200).collect()
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Walks the expression: every free variable must be one of [`VARIABLES`]
/// (those a comprehension binds are in `scope`), every call one of
/// [`FUNCTIONS`], no message (struct) literal, and no deeper than
/// [`MAX_DEPTH`] (`depth` is this node's).
fn check(
    expr: &IdedExpr,
    depth: usize,
    scope: &mut Vec<String>,
    report: &mut dyn FnMut(u64, String),
) {
    if depth > MAX_DEPTH {
        report(
            expr.id,
            format!("nested too deeply (at most {MAX_DEPTH} levels)"),
        );
        return;
    }
    let next = depth + 1;
    match &expr.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@')
                && !scope.iter().any(|bound| bound == name)
                && !VARIABLES.contains(&name.as_str())
            {
                report(
                    expr.id,
                    format!("unknown variable `{name}` (a filter sees `type` and `data`)"),
                );
            }
        }
        Expr::Call(call) => {
            if !FUNCTIONS.contains(&call.func_name.as_str()) {
                report(
                    expr.id,
                    format!("unknown function `{}`", call.func_name.trim_matches('_')),
                );
            }
            if let Some(target) = &call.target {
                check(target, next, scope, report);
            }
            for arg in &call.args {
                check(arg, next, scope, report);
            }
        }
        Expr::Select(select) => check(&select.operand, next, scope, report),
        Expr::Comprehension(c) => {
            check(&c.iter_range, next, scope, report);
            check(&c.accu_init, next, scope, report);
            let bound = scope.len();
            scope.push(c.iter_var.clone());
            if let Some(second) = &c.iter_var2 {
                scope.push(second.clone());
            }
            scope.push(c.accu_var.clone());
            check(&c.loop_cond, next, scope, report);
            check(&c.loop_step, next, scope, report);
            check(&c.result, next, scope, report);
            scope.truncate(bound);
        }
        Expr::List(list) => {
            for element in &list.elements {
                check(element, next, scope, report);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    check(&entry.key, next, scope, report);
                    check(&entry.value, next, scope, report);
                }
            }
        }
        Expr::Struct(s) => report(
            expr.id,
            format!(
                "message literals (`{} {{...}}`) are not supported",
                s.type_name
            ),
        ),
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// What a root expression is when it can never be a bool.
fn never_bool(expr: &Expr) -> Option<&'static str> {
    use cel::common::ast::LiteralValue;
    match expr {
        Expr::Literal(LiteralValue::Boolean(_)) => None,
        Expr::Literal(_) => Some("a literal that is not a bool"),
        Expr::List(_) => Some("a list"),
        Expr::Map(_) => Some("a map"),
        Expr::Call(call) if NOT_BOOL.contains(&call.func_name.as_str()) => {
            Some("a number or a string")
        }
        _ => None,
    }
}

/// Compiled filters, by text. An endpoint's new filter is a new text, so
/// "compiled once per endpoint version" holds without any invalidation;
/// the map is emptied should it ever grow past [`CACHE_MAX`] texts.
static CACHE: LazyLock<RwLock<HashMap<String, Option<Arc<Program>>>>> =
    LazyLock::new(RwLock::default);
const CACHE_MAX: usize = 20_000;

/// The compiled filter for `source`, once per process; `None` when it
/// does not compile (it was checked when written, so only a filter stored
/// by another version could: it matches nothing).
pub fn cached(source: &str) -> Option<Arc<Program>> {
    if let Ok(cache) = CACHE.read() {
        if let Some(found) = cache.get(source) {
            return found.clone();
        }
    }
    let compiled = compile(source).ok().map(Arc::new);
    if let Ok(mut cache) = CACHE.write() {
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(source.to_string(), compiled.clone());
    }
    compiled
}

/// One event, ready to be matched against any number of filters.
pub struct Matcher<'v> {
    context: Context<'v, 'v>,
}

impl<'v> Matcher<'v> {
    /// Binds `type` and `data` (parsed by the caller, once per event).
    pub fn new(event_type: &'v str, data: &'v serde_json::Value) -> Self {
        let mut context = Context::with_env(ENV.clone());
        context.add_variable_as_val("type", Box::new(CelString::from(event_type)));
        context.add_variable_as_val("data", to_val(data));
        Matcher { context }
    }

    /// Whether the event passes `program`; an error means no.
    pub fn evaluate(&self, program: &Program) -> Result<bool, String> {
        match program.execute(&self.context) {
            Ok(Value::Bool(matched)) => Ok(matched),
            Ok(other) => Err(format!("yielded {:?}, not a bool", other.type_of())),
            Err(err) => Err(err.to_string()),
        }
    }

    /// Whether the event passes the filter `source` (compiled once per
    /// process), counted in the filter metrics.
    pub fn passes(&self, source: &str) -> bool {
        EVALUATIONS.inc();
        let outcome = match cached(source) {
            Some(program) => self.evaluate(&program),
            None => Err("does not compile".into()),
        };
        match outcome {
            Ok(true) => {
                MATCHED.inc();
                true
            }
            Ok(false) => false,
            Err(reason) => {
                ERRORS.inc();
                tracing::debug!(%reason, "a filter failed on an event: no match");
                false
            }
        }
    }
}

/// Whether an event (`data` as JSON text) would pass the filter `source`,
/// as fan-out decides it, without counting it in the metrics: a test
/// send, which bypasses the filter, says what the filter would have done.
pub fn would_pass(source: &str, event_type: &str, data: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
        return false;
    };
    cached(source).is_some_and(|program| {
        Matcher::new(event_type, &value)
            .evaluate(&program)
            .unwrap_or(false)
    })
}

/// A JSON value as CEL sees it, borrowing its strings.
fn to_val(value: &serde_json::Value) -> Box<dyn Val + '_> {
    use serde_json::Value as J;
    match value {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::String(s) => Box::new(CelString::from(s.as_str())),
        J::Array(items) => Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>())),
        J::Object(fields) => Box::new(CelMap::from(
            fields
                .iter()
                .map(|(k, v)| (CelMapKey::String(CelString::from(k.as_str())), to_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(filter: &str, event_type: &str, data: serde_json::Value) -> Result<bool, String> {
        let program = compile(filter).map_err(|e| e.to_string())?;
        Matcher::new(event_type, &data).evaluate(&program)
    }

    #[test]
    fn filters_see_type_and_data() {
        let data = serde_json::json!({
            "confidence": 0.95, "video_id": "yt_1", "count": 3, "tags": ["a", "b"],
            "nested": {"ok": true}, "big": 18446744073709551615_u64
        });
        let cases = [
            (
                r#"data.confidence >= 0.9 && data.video_id.startsWith("yt_")"#,
                true,
            ),
            ("data.confidence >= 0.99", false),
            ("type == 'video.processed'", true),
            ("type.startsWith('user.')", false),
            ("data.count + 1 == 4", true),
            ("data.count > 2.5", true),
            ("'b' in data.tags && size(data.tags) == 2", true),
            ("data.tags.exists(t, t == 'a')", true),
            ("data.tags.all(t, t.endsWith('b'))", false),
            ("has(data.nested.ok) && data.nested.ok", true),
            ("has(data.missing)", false),
            ("data.big > 0u", true),
            ("string(data.count) == '3'", true),
            ("!(data.video_id.contains('zz'))", true),
            ("data.count % 2 == 1 ? true : false", true),
            ("true", true),
        ];
        for (filter, expected) in cases {
            assert_eq!(
                passes(filter, "video.processed", data.clone()),
                Ok(expected),
                "{filter}"
            );
        }
        // An integer compares with a double literal.
        assert_eq!(
            passes(
                "data.confidence >= 0.9",
                "x",
                serde_json::json!({"confidence": 1})
            ),
            Ok(true)
        );
    }

    #[test]
    fn a_missing_field_or_a_wrong_type_is_an_error_not_a_match() {
        let data = serde_json::json!({"name": "x"});
        assert!(passes("data.nope > 1", "t", data.clone()).is_err());
        assert!(passes("data.name > 1", "t", data.clone()).is_err());
        assert!(passes("data.name.startsWith(1)", "t", data.clone()).is_err());
        // Errors are absorbed where CEL absorbs them.
        assert_eq!(passes("data.nope > 1 || true", "t", data.clone()), Ok(true));
        // Counted, and no match, through `passes`.
        let before = ERRORS.get();
        assert!(!Matcher::new("t", &data).passes("data.nope > 1"));
        assert!(ERRORS.get() > before);
    }

    #[test]
    fn bad_filters_are_refused_with_their_position() {
        let cases: [(&str, (usize, usize), &str); 9] = [
            ("data.amount >", (1, 14), ""),
            (
                "data.a == 1 &&\n  foo > 2",
                (2, 3),
                "unknown variable `foo`",
            ),
            (
                "data.a.lowerAscii() == 'x'",
                (1, 18),
                "unknown function `lowerAscii`",
            ),
            ("data.a.matches('x')", (1, 15), "unknown function `matches`"),
            ("1 + 2", (1, 3), "must be true or false"),
            ("'text'", (1, 1), "must be true or false"),
            ("[true]", (1, 1), "must be true or false"),
            ("size(data.a)", (1, 5), "must be true or false"),
            ("   ", (1, 1), "must not be empty"),
        ];
        for (filter, (line, column), needle) in cases {
            let err = compile(filter)
                .err()
                .unwrap_or_else(|| panic!("{filter} compiled"));
            assert_eq!((err.line, err.column), (line, column), "{filter}: {err}");
            assert!(err.message.contains(needle), "{filter}: {err}");
        }
        // Comprehension variables are bound, not unknown.
        assert!(compile("data.tags.exists(tag, tag == 'a')").is_ok());
        // Too long, and nested too deeply.
        let long = format!("data.a == '{}'", "x".repeat(MAX_FILTER_BYTES));
        assert!(compile(&long).is_err());
        for deep in [
            format!("{}true{}", "(".repeat(200), ")".repeat(200)),
            format!("{}true{}", "[".repeat(300), "]".repeat(300)),
            format!("{}data.a", "(data.a == 1 && ".repeat(60)) + &")".repeat(60),
            format!("data.a{}", ".b".repeat(600)),
        ] {
            let err = compile(&deep).err().map(|e| e.message);
            assert!(
                err.as_deref().is_some_and(
                    |e| e.contains("nested too deeply") || e.contains("must be true or false")
                ),
                "{deep:.40}: {err:?}"
            );
        }
        // The parser folds a run of `!`: not deep.
        assert!(compile(&format!("{}true", "!".repeat(1000))).is_ok());
        assert!(compile(&format!("{}1 > 0", "-".repeat(1501))).is_ok());
        // A long chain of conditions is fine within the depth.
        let chain = vec!["data.a == 1"; 40].join(" || ");
        assert!(compile(&chain).is_ok(), "{:?}", compile(&chain).err());
    }

    #[test]
    fn every_allowed_function_exists() {
        // Each listed named function runs (a name the crate lacks would
        // fail at evaluation with "undeclared" or "no such overload").
        let data = serde_json::json!({"s": "abc", "n": 2, "l": [1]});
        for filter in [
            "size(data.s) == 3",
            "data.s.startsWith('a')",
            "data.s.endsWith('c')",
            "data.s.contains('b')",
            "int(data.n) == 2",
            "uint(data.n) == 2u",
            "double(data.n) == 2.0",
            "string(data.n) == '2'",
            "data.l.map(x, x + 1)[0] == 2",
            "data.l.filter(x, x > 0).size() == 1",
            "data.l.exists_one(x, x == 1)",
        ] {
            assert_eq!(passes(filter, "t", data.clone()), Ok(true), "{filter}");
        }
    }

    #[test]
    fn compiled_filters_are_cached_by_text() {
        let first = cached("data.a == 1").expect("compiles");
        let again = cached("data.a == 1").expect("compiles");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(cached("data.a ==").is_none());
    }
}
