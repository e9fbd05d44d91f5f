//! Renders the phases' JSON records as `docs/BENCHMARKS.md`: the
//! conditions of the run, the targets with what was measured, and one
//! section per phase. Everything after [`NOTES_MARKER`] in an existing file
//! (the hand-written reading of the profile) is kept as it is.
//!
//! A run of only some phases (`scripts/bench --phases ...`) goes through
//! [`merge`]: it rewrites those phases' sections, each with the conditions
//! of its own run, and their rows of the targets table, and keeps the rest
//! of the page, whose figures come from another run.

use std::fmt::Write as _;

use serde_json::Value;

/// The line after which the report keeps the existing text.
pub const NOTES_MARKER: &str =
    "<!-- Everything below this line is written by hand and kept by scripts/bench. -->";

/// The records of one phase.
fn phase<'a>(records: &'a [Value], name: &'static str) -> impl Iterator<Item = &'a Value> {
    records.iter().filter(move |r| r["phase"] == name)
}
fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn f0(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        let whole = v.round() as i64;
        // Thousands separators: 14,000 reads better than 14000.
        let digits = whole.abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if whole < 0 {
            out.insert(0, '-');
        }
        out
    }
}

fn f1(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.1}")
    }
}

fn f2(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.2}")
    }
}

/// Milliseconds from a percentile's microseconds.
fn ms(p: &Value, field: &str) -> String {
    f2(num(&p[field]) / 1000.0)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// One section of the page: its heading, the phase whose run it reports
/// (a run of that phase rewrites it) and its writer.
struct Section {
    phase: &'static str,
    heading: &'static str,
    write: fn(&[Value], &mut String),
}

/// The page's sections, in order.
const SECTIONS: &[Section] = &[
    Section {
        phase: "throughput",
        heading: "## 1. Throughput",
        write: throughput,
    },
    Section {
        phase: "latency",
        heading: "## 2. Latency",
        write: latency,
    },
    Section {
        phase: "bare",
        heading: "## 3. Physical limit",
        write: physical_limit,
    },
    Section {
        phase: "fanout",
        heading: "## 4. Fan-out",
        write: fanout,
    },
    Section {
        phase: "backlog",
        heading: "## 5. Backlog",
        write: backlog,
    },
    Section {
        phase: "throughput",
        heading: "## 6. Peak memory",
        write: peak_memory,
    },
    Section {
        phase: "noisy-neighbour",
        heading: "## 7. Noisy neighbour",
        write: noisy_neighbour,
    },
    // (8 is the console's, written by scripts/bench_console_section.py.)
    Section {
        phase: "fifo",
        heading: "## 9. Ordered delivery (FIFO)",
        write: fifo,
    },
    Section {
        phase: "filter",
        heading: "## 10. Content filters",
        write: filter,
    },
];

/// The number of a `## N. ...` heading.
fn section_number(heading: &str) -> Option<u32> {
    heading
        .strip_prefix("## ")?
        .split_once('.')
        .and_then(|(n, _)| n.parse().ok())
}

/// One row of the targets table, and the phases it is measured from (a run
/// of all of them rewrites it).
struct Target {
    phases: &'static [&'static str],
    measure: &'static str,
    target: &'static str,
    measured: String,
    met: bool,
}

impl Target {
    fn row(&self, note: &str) -> String {
        format!(
            "| {} | {} | {}{note} | {} |",
            self.measure,
            self.target,
            self.measured,
            met(self.met)
        )
    }
}

/// Deliveries/s of the one-event row and of the best row over the bare
/// loop's requests/s.
fn bare_ratios(records: &[Value]) -> (f64, f64) {
    let best_rate = phase(records, "throughput")
        .map(|r| num(&r["deliveries_per_s"]))
        .fold(f64::NAN, f64::max);
    let single_rate = phase(records, "throughput")
        .find(|r| r["batch"] == 0 && r["http2"] != true)
        .map(|r| num(&r["deliveries_per_s"]))
        .unwrap_or(f64::NAN);
    let bare_rate = phase(records, "bare")
        .map(|r| num(&r["requests_per_s"]))
        .next()
        .unwrap_or(f64::NAN);
    (single_rate / bare_rate, best_rate / bare_rate)
}

fn targets(records: &[Value]) -> Vec<Target> {
    let best_rate = phase(records, "throughput")
        .map(|r| num(&r["deliveries_per_s"]))
        .fold(f64::NAN, f64::max);
    let (ratio, batch_ratio) = bare_ratios(records);
    let p99 = phase(records, "latency")
        .find(|r| num(&r["rate"]) == 200.0)
        .or_else(|| phase(records, "latency").next())
        .map(|r| num(&r["publish_to_receipt"]["p99_us"]) / 1000.0)
        .unwrap_or(f64::NAN);
    // The tail at each rate: p99 over p50, allowed 3× up to 1,000/s and
    // 5× above.
    let tails: Vec<(f64, f64)> = phase(records, "latency")
        .map(|r| {
            let l = &r["publish_to_receipt"];
            (num(&r["rate"]), num(&l["p99_us"]) / num(&l["p50_us"]))
        })
        .collect();
    let tails_met = !tails.is_empty()
        && tails
            .iter()
            .all(|&(rate, tail)| tail <= if rate <= 1000.0 { 3.0 } else { 5.0 });
    let tails_text = tails
        .iter()
        .map(|(rate, tail)| format!("{}/s: {}×", f0(*rate), f1(*tail)))
        .collect::<Vec<_>>()
        .join(", ");
    let worker_rss = phase(records, "throughput")
        .flat_map(|r| {
            r["peak_rss_mb"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.starts_with("worker"))
                .map(|(_, v)| num(v))
                .collect::<Vec<_>>()
        })
        .fold(f64::NAN, f64::max);
    let per_delivery = phase(records, "backlog")
        .map(|r| num(&r["bytes_per_delivery_beyond_payload"]))
        .next()
        .unwrap_or(f64::NAN);
    let fanout_answer = phase(records, "fanout")
        .map(|r| num(&r["publish_answer"]["p50_us"]) / 1000.0)
        .next()
        .unwrap_or(f64::NAN);
    let noisy = phase(records, "noisy-neighbour").next();
    let noisy_ratio = noisy.map_or(f64::NAN, |r| num(&r["p99_ratio"]));
    let (q_events, q_received) = noisy.map_or((f64::NAN, f64::NAN), |r| {
        (
            num(&r["alone"]["events"]) + num(&r["beside"]["events"]),
            num(&r["alone"]["received"]) + num(&r["beside"]["received"]),
        )
    });
    let (fifo_rate, fifo_of_loop) = phase(records, "fifo")
        .map(|r| {
            let fifo = num(&r["fifo_per_s"]);
            (fifo, 100.0 * fifo / num(&r["sequential_per_s"]))
        })
        .next()
        .unwrap_or((f64::NAN, f64::NAN));
    let fifo_ratio = phase(records, "fifo")
        .map(|r| num(&r["beside"]["p99_us"]) / num(&r["alone"]["p99_us"]))
        .next()
        .unwrap_or(f64::NAN);
    let filtered_answer = phase(records, "filter")
        .map(|r| num(&r["fanout_answer_filtered"]["p50_us"]) / 1000.0)
        .next()
        .unwrap_or(f64::NAN);
    let filtered_ratio = phase(records, "filter")
        .map(|r| num(&r["publish_filtered_per_s"]) / num(&r["publish_plain_per_s"]))
        .next()
        .unwrap_or(f64::NAN);
    vec![
        Target {
            phases: &["throughput"],
            measure: "deliveries/s end to end (best row)",
            target: "≥ 14,000",
            measured: f0(best_rate),
            met: best_rate >= 14_000.0,
        },
        Target {
            phases: &["throughput", "bare"],
            measure: "ratio to the bare loop (one event per request / best row)",
            target: "≥ 0.6",
            measured: format!("{} / {}", f2(ratio), f2(batch_ratio)),
            met: batch_ratio >= 0.6,
        },
        Target {
            phases: &["latency"],
            measure: "p99 publish→receipt at 200 events/s",
            target: "≤ 3 ms",
            measured: format!("{} ms", f2(p99)),
            met: p99 <= 3.0,
        },
        Target {
            phases: &["latency"],
            measure: "the tail under load: p99 over p50 publish→receipt at each rate",
            target: "≤ 3× up to 1,000/s, ≤ 5× above",
            measured: tails_text,
            met: tails_met,
        },
        Target {
            phases: &["throughput"],
            measure: "worker peak RSS under the throughput run",
            target: "≤ 64 MB",
            measured: format!("{} MB", f1(worker_rss)),
            met: worker_rss <= 64.0,
        },
        Target {
            phases: &["backlog"],
            measure: "Redis memory per queued delivery beyond the payload",
            target: "≤ 300 B",
            measured: format!("{} B", f0(per_delivery)),
            met: per_delivery <= 300.0,
        },
        Target {
            phases: &["fanout"],
            measure: "fan-out to 1,000 endpoints: publish answers in (median)",
            target: "≤ 20 ms",
            measured: format!("{} ms", f1(fanout_answer)),
            met: fanout_answer <= 20.0,
        },
        Target {
            phases: &["noisy-neighbour"],
            measure: "a tenant's p99 publish→receipt beside a tenant with hanging and failing receivers, over its p99 alone; its events received",
            target: "≤ 3×; all",
            measured: format!("{}×; {} of {}", f2(noisy_ratio), f0(q_received), f0(q_events)),
            met: noisy_ratio <= 3.0 && q_received >= q_events,
        },
        Target {
            phases: &["fifo"],
            measure: "one FIFO endpoint, receiver answering in 1 ms: deliveries/s, and of one request at a time (its bound)",
            target: "reported",
            measured: format!("{}; {}%", f0(fifo_rate), f0(fifo_of_loop)),
            met: fifo_rate > 0.0,
        },
        Target {
            phases: &["fifo"],
            measure: "a tenant's p99 publish→receipt beside draining and held FIFO endpoints, over alone",
            target: "≤ 3×",
            measured: format!("{}×", f2(fifo_ratio)),
            met: fifo_ratio <= 3.0,
        },
        Target {
            phases: &["filter"],
            measure: "fan-out to 1,000 endpoints with a filter each: publish answers in (median)",
            target: "≤ 5 ms",
            measured: format!("{} ms", f2(filtered_answer)),
            met: filtered_answer <= 5.0,
        },
        Target {
            phases: &["filter"],
            measure: "single publish with a filter on the endpoint, over without",
            target: "≥ 0.95",
            measured: f2(filtered_ratio),
            met: filtered_ratio >= 0.95,
        },
    ]
}

/// The page's title and what it is.
fn preamble(out: &mut String) {
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `scripts/bench` (see the README); every number below was \
         measured by it on the machine described here, with the whole stack \
         (Redis, the API, the worker(s), the receiver and the load driver) on \
         one box over loopback. Numbers from a shared or busy machine are \
         noisy: compare runs on the same machine only.\n"
    );
}

/// The conditions of a run as a two-column table.
fn conditions_table(out: &mut String, meta: &[(String, String)]) {
    let _ = writeln!(out, "| | |\n| --- | --- |");
    for (k, v) in meta {
        let _ = writeln!(out, "| {k} | {v} |");
    }
}

/// The whole generated part of the page.
pub fn render(records: &[Value], meta: &[(String, String)], notes: &str) -> String {
    let mut out = String::new();
    preamble(&mut out);
    let _ = writeln!(out, "## Conditions\n");
    conditions_table(&mut out, meta);
    let _ = writeln!(out, "\n## Targets\n");
    let _ = writeln!(
        out,
        "| measure | target | measured | met |\n| --- | --- | --- | --- |"
    );
    for target in targets(records) {
        let _ = writeln!(out, "{}", target.row(""));
    }
    for section in SECTIONS {
        let _ = writeln!(out);
        (section.write)(records, &mut out);
    }
    let _ = write!(out, "\n{NOTES_MARKER}");
    out.push_str(notes);
    out
}

/// `old` with the sections and target rows of the phases in `only`
/// rewritten from `records`, and everything else as it was. Each rewritten
/// section carries `meta`, the conditions of its own run, since the page's
/// conditions table describes the run the other figures come from; a
/// section the page lacks goes after the nearest earlier one it has.
pub fn merge(old: &str, records: &[Value], meta: &[(String, String)], only: &[&str]) -> String {
    let (head, notes) = old.split_once(NOTES_MARKER).unwrap_or((old, "\n"));
    let mut chunks = split_sections(head);
    let heading_at = |chunks: &[String], heading: &str| {
        chunks
            .iter()
            .position(|c| c.lines().next() == Some(heading))
    };
    if let Some(at) = heading_at(&chunks, "## Targets") {
        for target in targets(records) {
            if target.phases.iter().all(|p| only.contains(p)) {
                chunks[at] = set_row(&chunks[at], target.measure, &target.row(" (own run)"));
            }
        }
    }
    for (i, section) in SECTIONS.iter().enumerate() {
        if !only.contains(&section.phase) {
            continue;
        }
        let mut text = String::new();
        (section.write)(records, &mut text);
        // The conditions go right under the heading.
        let (heading, body) = text.split_once('\n').unwrap_or((&text, ""));
        let mut with_meta =
            format!("{heading}\n\nMeasured in a run of its own, not the one under Conditions:\n\n");
        conditions_table(&mut with_meta, meta);
        with_meta.push_str(body);
        with_meta.push('\n');
        match heading_at(&chunks, section.heading) {
            Some(at) => chunks[at] = with_meta,
            None => {
                let mut at = SECTIONS[..i]
                    .iter()
                    .rev()
                    .find_map(|earlier| heading_at(&chunks, earlier.heading))
                    .map_or(chunks.len(), |at| at + 1);
                // Past sections numbered before it that are not ours (the
                // console's).
                let own = section_number(section.heading).unwrap_or(0);
                while chunks
                    .get(at)
                    .and_then(|c| section_number(c.lines().next().unwrap_or("")))
                    .is_some_and(|n| n < own)
                {
                    at += 1;
                }
                chunks.insert(at, with_meta);
            }
        }
    }
    let mut out = chunks.concat();
    out.push_str(NOTES_MARKER);
    out.push_str(notes);
    out
}

/// Splits a page at its `## ` headings: the text before the first heading,
/// then one chunk per section, each from its heading to the next.
fn split_sections(page: &str) -> Vec<String> {
    let mut chunks = vec![String::new()];
    for line in page.split_inclusive('\n') {
        if line.starts_with("## ") {
            chunks.push(String::new());
        }
        if let Some(last) = chunks.last_mut() {
            last.push_str(line);
        }
    }
    chunks
}

/// `chunk` with the table row for `measure` replaced by `row`, or `row`
/// added after the chunk's last table row if it has none.
fn set_row(chunk: &str, measure: &str, row: &str) -> String {
    let mut lines: Vec<String> = chunk.split_inclusive('\n').map(str::to_string).collect();
    let prefix = format!("| {measure} |");
    let row = format!("{row}\n");
    if let Some(at) = lines.iter().position(|l| l.starts_with(&prefix)) {
        lines[at] = row;
    } else {
        let at = lines
            .iter()
            .rposition(|l| l.starts_with('|'))
            .map_or(lines.len(), |at| at + 1);
        lines.insert(at, row);
    }
    lines.concat()
}

/// Phase 1: the throughput rows, then Redis's commands per delivery.
/// A throughput row's short name: how its events were published.
fn row_name(r: &Value) -> String {
    match (r["batch"].as_u64().unwrap_or(0), r["http2"] == true) {
        (0, false) => "one event per request".to_string(),
        (0, true) => "one event per request, HTTP/2".to_string(),
        (b, _) => format!("batches of {b}"),
    }
}

fn throughput(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 1. Throughput\n");
    let _ = writeln!(
        out,
        "N events with a ~200-byte body to one endpoint, published by C \
         concurrent clients; *accepted* is N over the time until the last \
         publish was answered, *end to end* is deliveries over the time from \
         the first publish to the last receipt. CPU seconds are each \
         process's user + system time over the whole phase \
         (`/proc/<pid>/stat`); the load generator (the driver's own \
         process, publishing) shares the machine but is not Hookfleet.\n"
    );
    let names: Vec<String> = phase(records, "throughput")
        .flat_map(|r| {
            r["cpu_s"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .fold(Vec::new(), |mut acc, k| {
            if !acc.contains(&k) {
                acc.push(k);
            }
            acc
        });
    let mut header =
        "| publishing | N | C | accepted events/s | deliveries/s end to end |".to_string();
    let mut rule = "| --- | --- | --- | --- | --- |".to_string();
    for name in &names {
        let _ = write!(header, " CPU s {name} |");
        rule.push_str(" --- |");
    }
    header.push_str(" CPU s load generator |");
    rule.push_str(" --- |");
    let _ = writeln!(out, "{header}\n{rule}");
    for r in phase(records, "throughput") {
        let mut how = match r["batch"].as_u64().unwrap_or(0) {
            0 => "`POST /api/v1/events`, one event per request".to_string(),
            b => format!("`POST /api/v1/events/batch`, {b} events per request"),
        };
        if r["http2"] == true {
            how.push_str(", HTTP/2 (one connection, a stream per request)");
        }
        if let Some(tenants) = r["tenants"].as_u64().filter(|t| *t > 1) {
            let _ = write!(how, ", to {tenants} tenants of one endpoint each");
        }
        let mut row = format!(
            "| {how} | {} | {} | {} | {} |",
            f0(num(&r["events"])),
            r["clients"],
            f0(num(&r["accepted_per_s"])),
            f0(num(&r["deliveries_per_s"])),
        );
        for name in &names {
            let _ = write!(row, " {} |", f2(num(&r["cpu_s"][name])));
        }
        let _ = write!(row, " {} |", f2(num(&r["generator_cpu_s"])));
        let _ = writeln!(out, "{row}");
    }

    for r in phase(records, "throughput") {
        let Some(rows) = r["redis_commands"]
            .as_array()
            .filter(|rows| !rows.is_empty())
        else {
            continue;
        };
        let how = row_name(r);
        let _ = writeln!(
            out,
            "\nRedis per delivery, {how} (`INFO commandstats`; EVALSHA's time \
             includes the commands its scripts run, which are also listed \
             on their own):\n"
        );
        let _ = writeln!(
            out,
            "| command | calls per delivery | µs per delivery |\n| --- | --- | --- |"
        );
        for row in rows {
            // (A subcommand's name, such as `script|load`, would split
            // the table's cell unescaped.)
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                row["command"].as_str().unwrap_or("").replace('|', "\\|"),
                f2(num(&row["calls"])),
                f1(num(&row["usec"])),
            );
        }
    }
}

/// Phase 2: publish→receipt at a steady rate.
fn latency(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 2. Latency\n");
    let _ = writeln!(
        out,
        "An open-loop publisher (one request every 1/R s, not waiting for \
         answers) at R events/s for S seconds, one endpoint, a fresh tenant \
         per rate, the rates one after the other. Publish→receipt \
         runs from just before the publish request is sent to the receiver \
         reading the delivery (same clock); *answer* is the publish \
         request's own round trip.\n"
    );
    let _ = writeln!(
        out,
        "| R/s | S | events | p50 ms | p95 ms | p99 ms | max ms | answer p50 ms | answer p99 ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "latency") {
        let l = &r["publish_to_receipt"];
        let a = &r["publish_answer"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["rate"],
            r["seconds"],
            f0(num(&r["events"])),
            ms(l, "p50_us"),
            ms(l, "p95_us"),
            ms(l, "p99_us"),
            ms(l, "max_us"),
            ms(a, "p50_us"),
            ms(a, "p99_us"),
        );
    }
}

/// Phase 3: the bare loop, the relay (two exchanges per event), and the
/// throughput rows over the bare loop.
fn physical_limit(records: &[Value], out: &mut String) {
    let (ratio, batch_ratio) = bare_ratios(records);
    let _ = writeln!(out, "## 3. Physical limit\n");
    let _ = writeln!(
        out,
        "The same receiver driven by a bare loop that calls the worker's own \
         `deliver::send` (same reqwest client and settings, same signing and \
         headers, same body size) with the worker's concurrency, and no \
         Redis or API. In the *relay* row, C publishers (as many as the \
         throughput rows have clients) send the throughput phase's publish \
         request (same client, headers and body) to the same receiver, \
         which answers at once with an empty 200, and each answered publish \
         goes to one of D delivery tasks (32, the default limit of attempts \
         in flight to one endpoint), which send it as the bare loop does: the \
         two HTTP exchanges an event published one per request costs end \
         to end, with no API logic, no Redis and no worker bookkeeping \
         between them. Its rate over the bare loop's is about the most the \
         one-event row's ratio could be on this machine with all of those \
         free. CPU is µs per request (per event in the relay row): *client* \
         is the driver's process (both clients), *receiver* the \
         receiver's.\n"
    );
    let _ = writeln!(
        out,
        "| loop | requests | concurrency (relay: C / D) | requests/s | CPU µs client | CPU µs receiver | over bare | Hookfleet one event per request / bare | Hookfleet best row / bare |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let bare_rate = phase(records, "bare")
        .map(|r| num(&r["requests_per_s"]))
        .next()
        .unwrap_or(f64::NAN);
    for (name, r) in phase(records, "bare")
        .map(|r| ("bare", r))
        .chain(phase(records, "relay").map(|r| ("relay", r)))
    {
        let n = num(&r["requests"]);
        let rate = num(&r["requests_per_s"]);
        let (own_ratio, batch) = if name == "bare" {
            (f2(ratio), f2(batch_ratio))
        } else {
            (String::new(), String::new())
        };
        let tasks = match r["deliver_concurrency"].as_u64() {
            Some(deliverers) => format!("{} / {deliverers}", r["concurrency"]),
            None => r["concurrency"].to_string(),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {tasks} | {} | {} | {} | {} | {own_ratio} | {batch} |",
            f0(n),
            f0(rate),
            f1(num(&r["cpu_s"]["client"]) * 1e6 / n),
            f1(num(&r["cpu_s"]["receiver"]) * 1e6 / n),
            f2(rate / bare_rate),
        );
    }
}

/// Phase 4: one event to many endpoints.
fn fanout(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 4. Fan-out\n");
    let _ = writeln!(
        out,
        "One event to E endpoints of one tenant (all on the same receiver), \
         repeated; each run waits until every endpoint got it.\n"
    );
    let _ = writeln!(
        out,
        "| E | runs | publish answer median ms | max ms | all received median ms | max ms |\n| --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "fanout") {
        let a = &r["publish_answer"];
        let all = &r["all_received"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            f0(num(&r["endpoints"])),
            r["complete"],
            ms(a, "p50_us"),
            ms(a, "max_us"),
            ms(all, "p50_us"),
            ms(all, "max_us"),
        );
    }
}

/// Phase 5: Redis memory of a queued backlog, then its drain.
fn backlog(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 5. Backlog\n");
    let _ = writeln!(
        out,
        "N deliveries (N events to one endpoint, through the batch route) \
         queued with no worker running; Redis `used_memory` before and \
         after. *Beyond the payload* subtracts the stored body (the signed \
         JSON, once per event); with one endpoint per event it still counts \
         the event's own hash and index entries. Then W workers start and \
         drain it; the rate runs from the first receipt to the last.\n"
    );
    let _ = writeln!(
        out,
        "| N | queued events/s | API CPU µs per event | Redis CPU µs per event | body bytes | bytes per delivery | beyond the payload |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "backlog") {
        let n = num(&r["deliveries"]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f0(n),
            f0(num(&r["accepted_per_s"])),
            f1(num(&r["cpu_s"]["api"]) * 1e6 / n),
            f1(num(&r["cpu_s"]["redis"]) * 1e6 / n),
            r["body_bytes"],
            f0(num(&r["bytes_per_delivery"])),
            f0(num(&r["bytes_per_delivery_beyond_payload"])),
        );
    }
    let _ = writeln!(
        out,
        "\n| workers | deliveries | drain s | deliveries/s | worker CPU µs per delivery | Redis CPU µs per delivery |\n| --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "drain") {
        let n = num(&r["received"]);
        let workers: f64 = r["cpu_s"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with("worker"))
                    .map(|(_, v)| num(v))
                    .sum()
            })
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r["workers"],
            f0(n),
            f1(num(&r["seconds"])),
            f0(num(&r["deliveries_per_s"])),
            f1(workers * 1e6 / n),
            f1(num(&r["cpu_s"]["redis"]) * 1e6 / n),
        );
    }
}

/// Peak RSS of each process after each throughput row.
fn peak_memory(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 6. Peak memory\n");
    let _ = writeln!(
        out,
        "`VmHWM` (peak resident set) of each process after each throughput \
         row (peaks only grow, so a later row includes the earlier ones).\n"
    );
    let _ = writeln!(
        out,
        "| after | process | peak RSS MB |\n| --- | --- | --- |"
    );
    for r in phase(records, "throughput") {
        let after = row_name(r);
        if let Some(rss) = r["peak_rss_mb"].as_object() {
            for (name, mb) in rss {
                let _ = writeln!(out, "| {after} | {name} | {} |", f1(num(mb)));
            }
        }
    }
}

/// Phase 7: tenant Q alone and beside tenant N's hanging and failing
/// receivers.
fn noisy_neighbour(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 7. Noisy neighbour\n");
    let _ = writeln!(
        out,
        "Tenant Q publishes R events/s for S seconds, one event per request \
         and open loop as in section 2, to one endpoint on the fast receiver: \
         first alone, then beside tenant N, which has D deliveries queued \
         (batch route) to each of two endpoints: one on a receiver that \
         accepts requests and never answers (the endpoint's `timeout_s` is \
         10) and one on a receiver that answers 500 after 2 s, both served \
         by the load driver on loopback. Q's second run starts once both of \
         N's receivers have had a request. Every endpoint has the fleet's \
         default cap on attempts in flight (`HOOKFLEET_MAX_IN_FLIGHT`); the \
         API's default lease (60 s) admits the 10 s timeout, so the run sets \
         neither. Q's p99 beside N should stay within 3× of its p99 alone, \
         and every one of Q's events must arrive (the phase fails \
         otherwise).\n"
    );
    let _ = writeln!(
        out,
        "| tenant Q | R/s | S | workers | events | received | p50 ms | p95 ms | p99 ms | max ms | answer p99 ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "noisy-neighbour") {
        for (label, run) in [("alone", &r["alone"]), ("beside tenant N", &r["beside"])] {
            let l = &run["publish_to_receipt"];
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["rate"],
                r["seconds"],
                r["workers"],
                f0(num(&run["events"])),
                f0(num(&run["received"])),
                ms(l, "p50_us"),
                ms(l, "p95_us"),
                ms(l, "p99_us"),
                ms(l, "max_us"),
                ms(&run["publish_answer"], "p99_us"),
            );
        }
        let ratio = num(&r["p99_ratio"]);
        let _ = writeln!(
            out,
            "\np99 beside tenant N over p99 alone: **{}×** (target ≤ 3×: {}).",
            f2(ratio),
            met(ratio <= 3.0)
        );
    }
    let _ = writeln!(
        out,
        "\nTenant N's receivers: requests that reached them while Q's second \
         run was measured, in all (from queueing to the end of the phase), \
         and the most they held open at once.\n"
    );
    let _ = writeln!(
        out,
        "| receiver | answers | deliveries queued | cap in flight | requests during Q's run | requests in all | most open at once |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "noisy-neighbour") {
        for n in r["noisy"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                n["receiver"].as_str().unwrap_or(""),
                n["answer"].as_str().unwrap_or(""),
                f0(num(&n["deliveries"])),
                n["max_in_flight"],
                f0(num(&n["requests_in_window"])),
                f0(num(&n["requests"])),
                n["most_open"],
            );
        }
    }
}

/// Ordered delivery: one FIFO endpoint's drain rate against its bound,
/// and another tenant's latency beside FIFO endpoints.
fn fifo(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 9. Ordered delivery (FIFO)\n");
    let _ = writeln!(
        out,
        "(a) N events queued to one endpoint while paused, then resumed: \
         the time until the receiver (in the load driver, answering 200 \
         after 1 ms) has them all. A FIFO endpoint has one attempt in \
         flight, so each delivery costs a whole round trip (claim, POST, \
         1 ms answer, record, the next claim): its bound is one round trip \
         per delivery, at most 1,000/s, and in practice what the load \
         driver's own client gets posting to that receiver one request at \
         a time (a 1 ms timer takes a little longer than 1 ms). The same \
         queue to an unordered endpoint (its default cap of attempts in \
         flight) is the comparison.\n"
    );
    let _ = writeln!(
        out,
        "| N | FIFO deliveries/s | one request at a time, requests/s | FIFO of that | of 1,000/s | unordered deliveries/s |\n| --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "fifo") {
        let fifo = num(&r["fifo_per_s"]);
        let sequential = num(&r["sequential_per_s"]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}% | {}% | {} |",
            f0(num(&r["events"])),
            f0(fifo),
            f0(sequential),
            f0(100.0 * fifo / sequential),
            f0(fifo / 10.0),
            f0(num(&r["none_per_s"])),
        );
    }
    let _ = writeln!(
        out,
        "\n(b) Tenant Q publishes R events/s for S seconds (open loop, one \
         event per request, as in section 2) to the fast receiver: alone, \
         then beside a tenant with F FIFO endpoints draining a backlog each \
         (on the 1 ms receiver) and H FIFO endpoints whose line is held: \
         each has a backlog behind a head that failed (500) and waits an \
         hour for its retry.\n"
    );
    let _ = writeln!(
        out,
        "| tenant Q | R/s | S | F draining | H held | backlog each | p50 ms | p95 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in phase(records, "fifo") {
        for (label, l) in [
            ("alone", &r["alone"]),
            ("beside FIFO endpoints", &r["beside"]),
        ] {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["rate"],
                r["seconds"],
                r["draining"],
                r["held"],
                f0(num(&r["backlog_per_endpoint"])),
                ms(l, "p50_us"),
                ms(l, "p95_us"),
                ms(l, "p99_us"),
                ms(l, "max_us"),
            );
        }
        let _ = writeln!(
            out,
            "\nThe held endpoints' receiver got {} requests in all: one per \
             endpoint, the head's first attempt; their lines cost nothing \
             while they wait.",
            f0(num(&r["held_attempts"]))
        );
    }
}

/// Content filters: fan-out with a filter per endpoint, and single-event
/// publishing with a filter on the one endpoint, each against the same
/// without.
fn filter(records: &[Value], out: &mut String) {
    let _ = writeln!(out, "## 10. Content filters\n");
    for r in phase(records, "filter") {
        let _ = writeln!(
            out,
            "Every filtered endpoint has `{}`, each with its own `<n>` (it \
             reads two fields and passes the event; distinct texts, so each \
             is compiled and evaluated on its own). (a) One event to E endpoints, each with the \
             filter, and to E without, published alternately R times after \
             one warm-up each (which compiles the filter): the publish \
             answer's time (fan-out and filters included). (b) C clients \
             publishing single events (closed loop) to one endpoint with the \
             filter and to one without, after a warm-up of each, in rounds, \
             each round both (which goes first alternating); the mean of \
             the rounds' rates.\n",
            r["filter"].as_str().unwrap_or("")
        );
        let (plain, filtered) = (&r["fanout_answer_plain"], &r["fanout_answer_filtered"]);
        let _ = writeln!(
            out,
            "| fan-out to E | R | answer median ms | p95 ms | max ms |\n| --- | --- | --- | --- | --- |"
        );
        for (label, p) in [("without filters", plain), ("a filter each", filtered)] {
            let _ = writeln!(
                out,
                "| {} {label} | {} | {} | {} | {} |",
                f0(num(&r["endpoints"])),
                r["repeat"],
                ms(p, "p50_us"),
                ms(p, "p95_us"),
                ms(p, "max_us"),
            );
        }
        let (a, b) = (
            num(&r["publish_plain_per_s"]),
            num(&r["publish_filtered_per_s"]),
        );
        let _ = writeln!(
            out,
            "\n| single publish, C = {} | events per round | rounds | events/s (mean) |\n| --- | --- | --- | --- |",
            r["clients"]
        );
        let _ = writeln!(
            out,
            "| without a filter | {} | {} | {} |\n| with a filter | {} | {} | {} |",
            f0(num(&r["events_per_round"])),
            r["rounds"],
            f0(a),
            f0(num(&r["events_per_round"])),
            r["rounds"],
            f0(b),
        );
        let _ = writeln!(
            out,
            "\nWith a filter over without: **{}** (target ≥ 0.95: {}).",
            f2(b / a),
            met(b / a >= 0.95)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn noisy(alone_p99_us: f64, beside_p99_us: f64) -> Value {
        let run = |p99: f64| {
            json!({
                "events": 1000, "received": 1000,
                "publish_to_receipt": {"samples": 1000, "p50_us": 500.0, "p95_us": 800.0, "p99_us": p99, "max_us": 2000.0},
                "publish_answer": {"samples": 1000, "p50_us": 300.0, "p95_us": 400.0, "p99_us": 500.0, "max_us": 900.0},
            })
        };
        json!({
            "phase": "noisy-neighbour", "rate": 50, "seconds": 20.0, "workers": 1,
            "alone": run(alone_p99_us), "beside": run(beside_p99_us),
            "p99_ratio": beside_p99_us / alone_p99_us,
            "noisy": [{"receiver": "hanging", "answer": "none", "deliveries": 2000,
                       "max_in_flight": 32, "requests_in_window": 40, "requests": 45, "most_open": 32}],
        })
    }

    fn latency(p99_us: f64) -> Value {
        json!({
            "phase": "latency", "rate": 200, "seconds": 30.0, "events": 6000, "received": 6000,
            "publish_to_receipt": {"samples": 6000, "p50_us": 560.0, "p95_us": 810.0, "p99_us": p99_us, "max_us": 4200.0},
            "publish_answer": {"samples": 6000, "p50_us": 370.0, "p95_us": 600.0, "p99_us": 790.0, "max_us": 1000.0},
        })
    }

    fn meta(commit: &str) -> Vec<(String, String)> {
        vec![("commit".into(), commit.into())]
    }

    #[test]
    fn a_run_of_one_phase_rewrites_only_its_section_and_target_row() {
        let old = render(
            &[latency(1090.0), noisy(7000.0, 15000.0)],
            &meta("full"),
            "\nnotes by hand\n",
        );
        let page = merge(
            &old,
            &[noisy(6000.0, 12000.0)],
            &meta("own"),
            &["noisy-neighbour"],
        );

        let chunks = split_sections(&page);
        let old_chunks = split_sections(&old);
        assert_eq!(chunks.len(), old_chunks.len());
        for (new, old) in chunks.iter().zip(&old_chunks) {
            if new.starts_with("## 7.") {
                assert!(new.contains("| commit | own |"), "{new}");
                assert!(new.contains("| 12.00 |"), "{new}");
                assert!(new.contains("**2.00×**"), "{new}");
                // The conditions sit between the heading and the text.
                assert!(new.find("| commit |") < new.find("Tenant Q publishes"));
            } else if new.starts_with("## Targets") {
                assert!(
                    new.contains("| 2.00×; 2,000 of 2,000 (own run) | yes |"),
                    "{new}"
                );
                assert_eq!(new.matches("beside a tenant").count(), 1, "{new}");
                assert!(new.contains("| 1.09 ms | yes |"), "{new}");
            } else {
                assert_eq!(new, old);
            }
        }
        assert!(page.ends_with(&format!("{NOTES_MARKER}\nnotes by hand\n")));
    }

    #[test]
    fn a_section_the_page_lacks_goes_after_the_one_before_it() {
        let full = render(&[latency(1090.0)], &meta("full"), "\n");
        // A page written before the noisy-neighbour phase existed.
        let (head, notes) = full.split_once(NOTES_MARKER).unwrap_or((&full, ""));
        let old_chunks: Vec<String> = split_sections(head)
            .into_iter()
            .filter(|c| !c.starts_with("## 7."))
            .map(|c| {
                c.lines()
                    .filter(|l| !l.contains("beside a tenant"))
                    .map(|l| format!("{l}\n"))
                    .collect()
            })
            .collect();
        let old = format!("{}{NOTES_MARKER}{notes}", old_chunks.concat());

        let page = merge(
            &old,
            &[noisy(7000.0, 14000.0)],
            &meta("own"),
            &["noisy-neighbour"],
        );
        let headings: Vec<&str> = page.lines().filter(|l| l.starts_with("## ")).collect();
        let at = |h: &str| headings.iter().position(|x| x.starts_with(h));
        assert!(
            at("## 6.") < at("## 7.") && at("## 7.") < at("## 9."),
            "{headings:?}"
        );
        assert_eq!(at("## 7."), at("## 6.").map(|i| i + 1), "{headings:?}");
        assert!(page.contains("| 2.00×; 2,000 of 2,000 (own run) | yes |\n\n## 1."));
        assert!(page.contains("| 1.09 ms | yes |"));
        assert!(page.contains(&format!("\n\n{NOTES_MARKER}")));
    }

    #[test]
    fn the_relay_row_reads_its_rate_over_the_bare_loop_and_cpu_per_event() {
        let throughput = json!({
            "phase": "throughput", "events": 60000, "clients": 16, "batch": 0, "http2": false,
            "accepted_per_s": 12000.0, "deliveries_per_s": 12000.0,
            "cpu_s": {"api": 1.8}, "generator_cpu_s": 1.2,
        });
        let bare = json!({
            "phase": "bare", "requests": 20000, "concurrency": 256,
            "requests_per_s": 40000.0, "cpu_s": {"client": 0.6, "receiver": 0.3},
        });
        let relay = json!({
            "phase": "relay", "requests": 20000, "concurrency": 16, "deliver_concurrency": 32,
            "requests_per_s": 22000.0, "cpu_s": {"client": 1.2, "receiver": 0.6},
        });
        let mut out = String::new();
        physical_limit(&[throughput.clone(), bare, relay], &mut out);
        assert!(
            out.contains("| bare | 20,000 | 256 | 40,000 | 30.0 | 15.0 | 1.00 | 0.30 |"),
            "{out}"
        );
        assert!(
            out.contains("| relay | 20,000 | 16 / 32 | 22,000 | 60.0 | 30.0 | 0.55 |  |  |"),
            "{out}"
        );
        let mut table = String::new();
        super::throughput(&[throughput], &mut table);
        assert!(table.contains("CPU s load generator |"), "{table}");
        assert!(table.contains("| 1.80 | 1.20 |"), "{table}");
    }
}
