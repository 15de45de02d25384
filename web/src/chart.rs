//! The balance chart: an SVG drawn on the server from one balance per day.
//!
//! Written by hand rather than with a plotting library: it is one line and two axes, and
//! the SVG is small, needs no font metrics, and uses presentation attributes only (the
//! page's CSP forbids inline styles).

use std::fmt::Write;

use chrono::NaiveDate;

use crate::money;

const WIDTH: i64 = 640;
const HEIGHT: i64 = 220;
const LEFT: i64 = 70;
const RIGHT: i64 = 10;
const TOP: i64 = 10;
const BOTTOM: i64 = 30;

/// An SVG of the balance at the end of each day, oldest first.
pub fn balance_svg(days: &[(NaiveDate, i64)], currency: &str) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return String::new();
    };
    let max = days
        .iter()
        .map(|(_, balance)| *balance)
        .max()
        .unwrap_or(0)
        .max(1);
    let min = days
        .iter()
        .map(|(_, balance)| *balance)
        .min()
        .unwrap_or(0)
        .min(0);
    let span = max - min;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let steps = i64::try_from(days.len().saturating_sub(1))
        .unwrap_or(1)
        .max(1);
    let x = |index: usize| LEFT + i64::try_from(index).unwrap_or(0) * plot_width / steps;
    let y = |balance: i64| TOP + (max - balance) * plot_height / span;

    let mut points = String::new();
    for (index, (_, balance)) in days.iter().enumerate() {
        let _ = write!(points, "{},{} ", x(index), y(*balance));
    }
    let label = format!(
        "Balance from {} to {}: {} {currency} to {} {currency}",
        first.0,
        last.0,
        money::format(first.1),
        money::format(last.1)
    );
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" class="chart"><title id="chart-title">{label}</title>"##
    );
    let axis_bottom = HEIGHT - BOTTOM;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_bottom}" stroke="#6b7280" stroke-width="1"/><line x1="{LEFT}" y1="{axis_bottom}" x2="{}" y2="{axis_bottom}" stroke="#6b7280" stroke-width="1"/>"##,
        WIDTH - RIGHT
    );
    for value in [max, min] {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#374151">{}</text>"##,
            LEFT - 6,
            y(value) + 4,
            money::format(value)
        );
    }
    for (index, (day, _)) in [(0, first), (days.len() - 1, last)] {
        let anchor = if index == 0 { "start" } else { "end" };
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="{anchor}" font-size="12" fill="#374151">{}</text>"##,
            x(index),
            HEIGHT - 8,
            day.format("%d %b")
        );
    }
    let _ = write!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1d4ed8" stroke-width="2.5" stroke-linejoin="round"/></svg>"##,
        points.trim_end()
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_one_point_per_day_and_names_the_range() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default();
        let svg = balance_svg(&[(day(1), 0), (day(2), 1000), (day(3), 500)], "EUR");
        assert!(svg.contains(r#"points="70,190 350,10 630,100""#), "{svg}");
        assert!(svg.contains("<title id=\"chart-title\">Balance from 2026-11-01 to 2026-11-03: 0.00 EUR to 5.00 EUR</title>"));
        assert_eq!(balance_svg(&[], "EUR"), "");
    }
}
