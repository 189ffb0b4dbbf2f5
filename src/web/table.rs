//! Sortable, paginated tables: which orders a table offers, the one a link asked for, and
//! the links to the pages before and after and to the other orders. Everything is a plain
//! link (`?sort=ends&dir=asc&after=…`), so it works without JavaScript.
//!
//! A page is read from an index a [`Window`] at a time: the rows beyond the last (or, going
//! back, before the first) row the page before showed, one more than a page to know
//! whether more follow. A table offers only orders that an index keeps (docs/portal.md
//! says which); a sort, direction or page it does not know is a 400 that says so.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use crate::engine::EngineError;
use crate::store::{Mark, Window};

/// Rows one page of a table shows.
pub(super) const PER_PAGE: usize = 50;

/// An order a table offers: the column it sorts by, and which way it reads first.
pub(super) struct Order {
    pub key: &'static str,
    pub label: &'static str,
    pub ascending_first: bool,
}

/// A table on a page: its orders (the first is the default) and the prefix of its query
/// parameters (a page with two tables gives each its own).
pub(super) struct Table {
    pub path: &'static str,
    pub prefix: &'static str,
    pub orders: &'static [Order],
}

/// What a link asked of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Chosen {
    pub order: usize,
    pub ascending: bool,
    /// The page starts beyond this row (or, going back, ends before it).
    pub mark: Option<Mark>,
    pub backwards: bool,
}

impl Chosen {
    /// The key of the order chosen.
    pub fn key(&self, table: &Table) -> &'static str {
        table.orders[self.order].key
    }
}

/// One page of a table: its rows and the links to the pages around it.
#[derive(Serialize)]
pub(super) struct Page<T> {
    pub rows: Vec<T>,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// A sortable column's header: the link that sorts by it, and its `aria-sort`.
#[derive(Serialize)]
pub(super) struct Header {
    pub label: &'static str,
    pub href: String,
    /// `ascending` or `descending` on the column sorted by; `None` on the others.
    pub sort: Option<&'static str>,
    /// What following the link does, for screen readers and the title.
    pub action: String,
}

impl Table {
    fn param(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// The order, direction and page `query` asks for; the sentence to show when it asks
    /// for one this table does not have.
    pub fn choose(&self, query: &BTreeMap<String, String>) -> Result<Chosen, String> {
        let value = |name: &str| {
            query
                .get(&self.param(name))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let order = match value("sort") {
            None => 0,
            Some(sort) => self
                .orders
                .iter()
                .position(|o| o.key == sort)
                .ok_or_else(|| {
                    let offered: Vec<&str> = self.orders.iter().map(|o| o.key).collect();
                    format!(
                        "This table cannot be sorted by `{sort}`; it sorts by {}.",
                        offered.join(" or ")
                    )
                })?,
        };
        let ascending = match value("dir") {
            None => self.orders[order].ascending_first,
            Some("asc") => true,
            Some("desc") => false,
            Some(other) => {
                return Err(format!(
                    "`{other}` is not a direction; use `asc` or `desc`."
                ));
            }
        };
        let (mark, backwards) = match (value("after"), value("before")) {
            (Some(_), Some(_)) => {
                return Err(
                    "A page starts after one row or ends before one, not both; start again from the first page."
                        .to_owned(),
                );
            }
            (Some(after), None) => (Some(parse_mark(after)?), false),
            (None, Some(before)) => (Some(parse_mark(before)?), true),
            (None, None) => (None, false),
        };
        Ok(Chosen {
            order,
            ascending,
            mark,
            backwards,
        })
    }

    /// Reads the page `chosen` asks for with `read`, which reads one [`Window`] of the
    /// table's list; `mark` places a row in that list. Going back past the first row shows
    /// the first page.
    pub async fn page<T, F, Fut>(
        &self,
        query: &BTreeMap<String, String>,
        chosen: Chosen,
        read: F,
        mark: impl Fn(&T) -> Mark,
    ) -> Result<Page<T>, EngineError>
    where
        F: Fn(Window) -> Fut,
        Fut: Future<Output = Result<Vec<T>, EngineError>>,
    {
        let window = |chosen: Chosen| Window {
            after: chosen.mark,
            ascending: chosen.ascending != chosen.backwards,
            limit: PER_PAGE + 1,
        };
        let mut chosen = chosen;
        let mut rows = read(window(chosen)).await?;
        if chosen.backwards && rows.len() < PER_PAGE {
            // Fewer than a page before it: the first page, read from the start.
            chosen.mark = None;
            chosen.backwards = false;
            rows = read(window(chosen)).await?;
        }
        let more = rows.len() > PER_PAGE;
        rows.truncate(PER_PAGE);
        if chosen.backwards {
            rows.reverse();
        }
        let link = |name: &str, row: Option<&T>| {
            row.map(|row| self.link(query, chosen, Some((name, format_mark(mark(row))))))
        };
        let (previous, next) = match chosen.backwards {
            false => (
                chosen.mark.and_then(|_| link("before", rows.first())),
                more.then(|| link("after", rows.last())).flatten(),
            ),
            true => (
                more.then(|| link("before", rows.first())).flatten(),
                link("after", rows.last()),
            ),
        };
        Ok(Page {
            rows,
            previous,
            next,
        })
    }

    /// The headers of the columns this table sorts by, by their order's key.
    pub fn headers(
        &self,
        query: &BTreeMap<String, String>,
        chosen: Chosen,
    ) -> BTreeMap<&'static str, Header> {
        self.orders
            .iter()
            .enumerate()
            .map(|(i, order)| {
                let current = i == chosen.order;
                let ascending = match current {
                    true => !chosen.ascending,
                    false => order.ascending_first,
                };
                let sorted = Chosen {
                    order: i,
                    ascending,
                    mark: None,
                    backwards: false,
                };
                let way = if ascending { "ascending" } else { "descending" };
                let header = Header {
                    label: order.label,
                    href: self.link(query, sorted, None),
                    sort: current.then_some(match chosen.ascending {
                        true => "ascending",
                        false => "descending",
                    }),
                    action: format!("sort by {}, {way}", order.label.to_lowercase()),
                };
                (order.key, header)
            })
            .collect()
    }

    /// A link to this page with `chosen`'s order and, if given, a page mark, keeping the
    /// other parameters of `query` (another table's, a search's).
    fn link(
        &self,
        query: &BTreeMap<String, String>,
        chosen: Chosen,
        page: Option<(&str, String)>,
    ) -> String {
        let mut params = query.clone();
        for name in ["sort", "dir", "after", "before"] {
            params.remove(&self.param(name));
        }
        let order = &self.orders[chosen.order];
        if chosen.order != 0 {
            params.insert(self.param("sort"), order.key.to_owned());
        }
        if chosen.ascending != order.ascending_first {
            let dir = if chosen.ascending { "asc" } else { "desc" };
            params.insert(self.param("dir"), dir.to_owned());
        }
        if let Some((name, mark)) = page {
            params.insert(self.param(name), mark);
        }
        match serde_urlencoded::to_string(&params) {
            Ok(encoded) if !encoded.is_empty() => format!("{}?{encoded}", self.path),
            _ => self.path.to_owned(),
        }
    }
}

/// A row's mark in a link: `id`, or `millis.id` in a list ordered by a time.
fn format_mark(mark: Mark) -> String {
    match mark.at_ms {
        0 => mark.id.to_string(),
        at => format!("{at}.{}", mark.id),
    }
}

fn parse_mark(text: &str) -> Result<Mark, String> {
    let number = |n: &str| n.parse::<u64>().ok();
    let mark = match text.split_once('.') {
        None => number(text).map(|id| Mark { at_ms: 0, id }),
        Some((at, id)) => number(at)
            .zip(number(id))
            .map(|(at_ms, id)| Mark { at_ms, id }),
    };
    mark.ok_or_else(|| {
        format!("`{text}` is not a page of this table; start again from its first page.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: Table = Table {
        path: "/web/grants",
        prefix: "",
        orders: &[
            Order {
                key: "created",
                label: "Created",
                ascending_first: false,
            },
            Order {
                key: "ends",
                label: "Ends",
                ascending_first: true,
            },
        ],
    };

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_parameters_choose_the_first_order_its_own_way_from_the_start() {
        let chosen = TABLE.choose(&query(&[])).unwrap();
        assert_eq!(
            (chosen.order, chosen.ascending, chosen.mark),
            (0, false, None)
        );
    }

    #[test]
    fn a_sort_or_direction_the_table_lacks_is_refused_with_what_it_offers() {
        let e = TABLE.choose(&query(&[("sort", "person")])).unwrap_err();
        assert!(e.contains("created or ends"), "{e}");
        let e = TABLE.choose(&query(&[("dir", "up")])).unwrap_err();
        assert!(e.contains("`asc` or `desc`"), "{e}");
    }

    #[test]
    fn a_page_mark_that_is_not_one_is_refused() {
        for bad in ["x", "1.", ".2", "-3", "1.2.3"] {
            let e = TABLE.choose(&query(&[("after", bad)])).unwrap_err();
            assert!(e.contains("first page"), "{bad}: {e}");
        }
        let both = query(&[("after", "1"), ("before", "2")]);
        assert!(TABLE.choose(&both).is_err());
    }

    #[test]
    fn marks_read_back_as_written() {
        for mark in [
            Mark { at_ms: 0, id: 7 },
            Mark {
                at_ms: 1_700_000,
                id: 9,
            },
        ] {
            assert_eq!(parse_mark(&format_mark(mark)).unwrap(), mark);
        }
    }

    #[test]
    fn the_sorted_column_says_its_direction_and_its_link_turns_it_round() {
        let q = query(&[("sort", "ends"), ("after", "5.3"), ("person", "ann")]);
        let chosen = TABLE.choose(&q).unwrap();
        let headers = TABLE.headers(&q, chosen);
        assert_eq!(headers["ends"].sort, Some("ascending"));
        assert_eq!(
            headers["ends"].href,
            "/web/grants?dir=desc&person=ann&sort=ends"
        );
        assert_eq!(headers["created"].sort, None);
        assert_eq!(headers["created"].href, "/web/grants?person=ann");
    }
}
