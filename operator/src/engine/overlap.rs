//! Whether two traffic claims can match the same request: two ALB rules' host and path conditions, or two
//! API Gateway route keys. Used to keep one ApiDeployment from claiming traffic another already serves,
//! whatever the priorities (an ALB evaluates rules by priority, API Gateway picks the most specific
//! route: either way the later claim could take requests from the earlier one).

/// Whether some string matches both ALB patterns (`*` any run of characters, `?` one character), as
/// ALB matches a host or path condition value. `fold` compares case-insensitively (hosts).
pub fn globs_intersect(a: &str, b: &str, fold: bool) -> bool {
    let norm =
        |s: &str| -> Vec<char> { if fold { s.to_ascii_lowercase().chars().collect() } else { s.chars().collect() } };
    let (a, b) = (norm(a), norm(b));
    // reach[i][j]: some string takes pattern a[..i] and pattern b[..j] to the same place.
    let mut reach = vec![vec![false; b.len() + 1]; a.len() + 1];
    reach[0][0] = true;
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            if !reach[i][j] {
                continue;
            }
            let (x, y) = (a.get(i).copied(), b.get(j).copied());
            // A star may match nothing.
            if x == Some('*') {
                reach[i + 1][j] = true;
            }
            if y == Some('*') {
                reach[i][j + 1] = true;
            }
            match (x, y) {
                // A star takes one more character the other pattern produces (and stays).
                (Some('*'), Some(c)) if c != '*' => reach[i][j + 1] = true,
                (Some(c), Some('*')) if c != '*' => reach[i + 1][j] = true,
                (Some(c), Some(d)) if c != '*' && d != '*' && (c == '?' || d == '?' || c == d) => {
                    reach[i + 1][j + 1] = true;
                }
                _ => {}
            }
        }
    }
    reach[a.len()][b.len()]
}

/// Whether one value of `a` and one of `b` intersect; an empty list is no condition (matches all).
fn any_intersect(a: &[String], b: &[String], fold: bool) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|x| b.iter().any(|y| globs_intersect(x, y, fold)))
}

/// Whether two ALB rules (their host and path values) can match the same request.
pub fn rules_overlap(hosts_a: &[String], paths_a: &[String], hosts_b: &[String], paths_b: &[String]) -> bool {
    any_intersect(hosts_a, hosts_b, true) && any_intersect(paths_a, paths_b, false)
}

/// Whether two API Gateway HTTP API route keys (`GET /books/{id}`, `ANY /books/{proxy+}`, `$default`)
/// can match the same request.
pub fn routes_overlap(a: &str, b: &str) -> bool {
    let (Some((method_a, path_a)), Some((method_b, path_b))) = (a.split_once(' '), b.split_once(' ')) else {
        // `$default` catches every request no other route takes.
        return true;
    };
    let methods = method_a == "ANY" || method_b == "ANY" || method_a.eq_ignore_ascii_case(method_b);
    methods && paths_overlap(&segments(path_a), &segments(path_b))
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect()
}

/// Segment by segment: a literal matches itself, `{name}` any one segment, a final `{name+}` one or more.
fn paths_overlap(a: &[&str], b: &[&str]) -> bool {
    let greedy = |s: &str| s.starts_with('{') && s.ends_with("+}");
    let param = |s: &str| s.starts_with('{') && s.ends_with('}');
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        // A greedy segment is last and takes one or more segments: any non-empty rest of the other.
        (Some((x, _)), _) if greedy(x) => !b.is_empty(),
        (_, Some((y, _))) if greedy(y) => !a.is_empty(),
        (Some((x, ra)), Some((y, rb))) => (param(x) || param(y) || x == y) && paths_overlap(ra, rb),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn alb_patterns() {
        assert!(globs_intersect("/books*", "/books/1", false));
        assert!(globs_intersect("/books*", "/b*", false));
        assert!(globs_intersect("/a*c", "/ab*", false));
        assert!(!globs_intersect("/books*", "/movies*", false));
        assert!(!globs_intersect("/books", "/Books", false), "paths are case-sensitive");
        assert!(globs_intersect("API.example.com", "api.example.com", true), "hosts are not");
        assert!(globs_intersect("*.example.com", "books.example.com", true));
        assert!(!globs_intersect("*.example.com", "example.com", true));
        assert!(globs_intersect("/a?c", "/abc", false));
        assert!(!globs_intersect("/a?c", "/ac", false));
        assert!(globs_intersect("*", "", false));
    }

    #[test]
    fn alb_rules() {
        // Different hosts never meet, whatever the paths.
        assert!(!rules_overlap(&v(&["a.example.com"]), &v(&["/*"]), &v(&["b.example.com"]), &v(&["/*"])));
        // No host condition matches every host.
        assert!(rules_overlap(&[], &v(&["/books*"]), &v(&["a.example.com"]), &v(&["/books/1"])));
        assert!(!rules_overlap(&[], &v(&["/books*"]), &[], &v(&["/movies*"])));
        assert!(rules_overlap(&v(&["*.example.com"]), &[], &v(&["api.example.com"]), &v(&["/x"])));
    }

    #[test]
    fn api_routes() {
        assert!(routes_overlap("GET /books/{id}", "ANY /books/{proxy+}"));
        assert!(routes_overlap("GET /books", "GET /books"));
        assert!(!routes_overlap("GET /books", "POST /books"));
        assert!(!routes_overlap("GET /books/{id}", "GET /books"));
        assert!(routes_overlap("$default", "GET /anything"));
        assert!(!routes_overlap("ANY /books/{proxy+}", "GET /books"), "a greedy segment needs one or more");
        assert!(routes_overlap("ANY /{proxy+}", "GET /books/1/reviews"));
        assert!(!routes_overlap("GET /movies/{id}", "GET /books/{id}"));
        assert!(routes_overlap("GET /a/{x}/c", "GET /a/b/{y}"));
    }

    /// Brute force over a small alphabet: the patterns intersect exactly when some short string
    /// matches both.
    fn matches(p: &[char], s: &[char]) -> bool {
        match (p.split_first(), s.split_first()) {
            (None, None) => true,
            (Some(('*', rest)), _) => matches(rest, s) || (!s.is_empty() && matches(p, &s[1..])),
            (Some(('?', rest)), Some((_, srest))) => matches(rest, srest),
            (Some((c, rest)), Some((d, srest))) => c == d && matches(rest, srest),
            _ => false,
        }
    }

    fn strings(max: usize) -> Vec<Vec<char>> {
        let mut all = vec![vec![]];
        let mut frontier = vec![vec![]];
        for _ in 0..max {
            let next: Vec<Vec<char>> =
                frontier.iter().flat_map(|s: &Vec<char>| ['a', 'b'].map(|c| [s.clone(), vec![c]].concat())).collect();
            all.extend(next.clone());
            frontier = next;
        }
        all
    }

    proptest! {
        #[test]
        fn intersection_agrees_with_brute_force(a in "[ab*?]{0,4}", b in "[ab*?]{0,4}") {
            let (pa, pb): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let witness = strings(8).into_iter().any(|s| matches(&pa, &s) && matches(&pb, &s));
            prop_assert_eq!(globs_intersect(&a, &b, false), witness, "{} vs {}", a, b);
        }
    }
}
