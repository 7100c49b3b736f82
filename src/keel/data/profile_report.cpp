#include "keel/data/profile_report.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace keel::data {
namespace {

std::string num(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string count(const ProfileJson& v) { return v.is_number() ? num(v.get<double>()) : "-"; }

std::string percent(double share) { return num(share * 100.0, share * 100.0 < 10 ? 2 : 1) + "%"; }

// j[key], or null when j is not an object or lacks it (never a copy).
const ProfileJson& member(const ProfileJson& j, const char* key) {
  static const ProfileJson kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

double get(const ProfileJson& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// Vertical bars of an equal-width histogram; each bar's range and count on hover.
std::string svg_histogram(const ProfileJson& histogram, const std::string& unit) {
  const auto& counts = member(histogram, "counts");
  if (counts.empty()) return "";
  double from = get(histogram, "from"), width = get(histogram, "width");
  double peak = 1;
  for (const auto& c : counts) peak = std::max(peak, c.get<double>());
  const int w = 560, h = 120, left = 44, bottom = 22, top = 8;
  double bar = static_cast<double>(w - left) / static_cast<double>(counts.size());
  std::string svg = "<svg class=\"chart\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" viewBox=\"0 0 " + num(w) +
                    " " + num(h) + "\" role=\"img\">";
  svg += "<line x1=\"" + num(left) + "\" y1=\"" + num(h - bottom) + "\" x2=\"" + num(w) + "\" y2=\"" +
         num(h - bottom) + "\" stroke=\"#888\"/>";
  svg += "<text x=\"" + num(left - 4) + "\" y=\"" + num(top + 8) + "\" text-anchor=\"end\">" + num(peak) + "</text>";
  svg += "<text x=\"" + num(left - 4) + "\" y=\"" + num(h - bottom) + "\" text-anchor=\"end\">0</text>";
  for (size_t i = 0; i < counts.size(); ++i) {
    double c = counts[i].get<double>();
    double bh = (h - bottom - top) * c / peak;
    double x = left + bar * static_cast<double>(i);
    double lo = from + width * static_cast<double>(i), hi = lo + width - 1;
    svg += "<rect x=\"" + num(x + 1, 1) + "\" y=\"" + num(h - bottom - bh, 1) + "\" width=\"" +
           num(std::max(1.0, bar - 2), 1) + "\" height=\"" + num(bh, 1) + "\"><title>" + num(lo) +
           (hi > lo ? "-" + num(hi) : "") + " " + unit + ": " + num(c) + "</title></rect>";
  }
  double last = from + width * static_cast<double>(counts.size()) - 1;
  svg += "<text x=\"" + num(left) + "\" y=\"" + num(h - 6) + "\">" + num(from) + "</text>";
  svg += "<text x=\"" + num(w) + "\" y=\"" + num(h - 6) + "\" text-anchor=\"end\">" + num(last) + " " +
         html_escape(unit) + "</text>";
  svg += "</svg>";
  return svg;
}

// Horizontal bars with a label and a value text per bar.
std::string svg_bars(const std::vector<std::tuple<std::string, double, std::string>>& rows) {
  if (rows.empty()) return "<p class=\"muted\">none</p>";
  double peak = 0;
  for (const auto& [label, value, text] : rows) peak = std::max(peak, value);
  if (peak <= 0) peak = 1;
  const int w = 560, row = 20, label_w = 170, value_w = 90;
  int h = row * static_cast<int>(rows.size()) + 4;
  std::string svg = "<svg class=\"chart\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" viewBox=\"0 0 " + num(w) +
                    " " + num(h) + "\" role=\"img\">";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [label, value, text] = rows[i];
    double y = static_cast<double>(i) * row + 2;
    double bw = (w - label_w - value_w) * value / peak;
    std::string shown = label.size() > 26 ? label.substr(0, 24) + "\u2026" : label;
    svg += "<text x=\"" + num(label_w - 6) + "\" y=\"" + num(y + 14, 1) + "\" text-anchor=\"end\">" +
           html_escape(shown) + "</text>";
    svg += "<rect x=\"" + num(label_w) + "\" y=\"" + num(y + 3, 1) + "\" width=\"" + num(std::max(bw, 1.0), 1) +
           "\" height=\"" + num(row - 6) + "\"><title>" + html_escape(label) + ": " + html_escape(text) +
           "</title></rect>";
    svg += "<text x=\"" + num(label_w + bw + 6, 1) + "\" y=\"" + num(y + 14, 1) + "\">" + html_escape(text) + "</text>";
  }
  svg += "</svg>";
  return svg;
}

std::string percentile_table(const ProfileJson& dist) {
  std::string out = "<table class=\"pct\"><tr><th>min</th>";
  const auto& pct = member(dist, "percentiles");
  for (const auto& [k, v] : pct.items()) out += "<th>" + html_escape(k) + "</th>";
  out += "<th>max</th><th>mean</th></tr><tr><td>" + count(member(dist, "min")) + "</td>";
  for (const auto& [k, v] : pct.items()) out += "<td>" + count(v) + "</td>";
  out += "<td>" + count(member(dist, "max")) + "</td><td>" + num(get(dist, "mean"), 1) + "</td></tr></table>";
  return out;
}

std::string examples(const ProfileJson& list, const char* score) {
  if (!list.is_array() || list.empty()) return "<p class=\"muted\">none</p>";
  std::string out;
  for (const auto& e : list) {
    out += "<div class=\"example\"><div class=\"muted\">line " + count(member(e, "line")) + " &middot; " +
           count(member(e, "chars")) + " chars, " + count(member(e, "words")) + " words";
    if (score != nullptr && e.contains(score)) out += " &middot; " + percent(get(e, score)) + " repeated 3-grams";
    out += "</div><pre>" + html_escape(e.value("preview", "")) + "</pre></div>";
  }
  return out;
}

const char* kStyle =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 16px}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}"
    "h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0}"
    "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
    "td:first-child,th:first-child{text-align:left}.muted{color:#777;font-size:12px}"
    ".cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px}"
    ".card b{display:block;font-size:18px}.chart rect{fill:#4a7fb5}.chart text{font-size:11px;fill:#333}"
    "pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:6px;margin:2px 0 10px;"
    "font-size:12px}.example{margin-bottom:6px}";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string profile_html(const ProfileJson& p, const std::string& title) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
                  "</title><style>" + kStyle + "</style></head><body>\n";
  h += "<h1>" + html_escape(title) + "</h1>\n";
  double records = get(p, "records");
  const ProfileJson& text = member(p, "text");
  const ProfileJson& dups = member(p, "duplicates");
  const ProfileJson& pii = member(p, "pii");
  std::string text_field = member(p, "text_field").is_string() ? p["text_field"].get<std::string>() : "";

  h += "<div class=\"cards\">";
  auto card = [&](const std::string& label, const std::string& value) {
    h += "<div class=\"card\"><span class=\"muted\">" + html_escape(label) + "</span><b>" + html_escape(value) + "</b></div>";
  };
  card("records", num(records));
  card("fields", num(static_cast<double>(member(p, "fields").size())));
  card("text field", text_field.empty() ? "none" : text_field);
  if (get(p, "rejected") > 0) card("malformed records skipped", num(get(p, "rejected")));
  if (!text_field.empty()) {
    card("exact duplicates", percent(get(member(dups, "exact"), "rate")));
    card("near duplicates", percent(get(member(dups, "near"), "rate")));
    card("records with PII", percent(get(pii, "rate")));
  }
  h += "</div>\n";

  h += "<h2>Fields</h2><table><tr><th>field</th><th>type</th><th>present</th><th>missing</th><th>null</th>"
       "<th>empty</th><th>distinct</th></tr>";
  for (const auto& f : member(p, "fields")) {
    std::string distinct = f.contains("categorical") ? count(f["categorical"]["distinct"]) : "";
    h += "<tr><td>" + html_escape(f.value("name", "")) + "</td><td>" + html_escape(f.value("type", "")) + "</td><td>" +
         count(f["present"]) + "</td><td>" + count(f["missing"]) + "</td><td>" + count(f["null"]) + "</td><td>" +
         count(f["empty"]) + "</td><td>" + distinct + "</td></tr>";
  }
  h += "</table>\n";

  for (const auto& f : member(p, "fields")) {
    std::string name = f.value("name", "");
    if (f.contains("lengths")) {
      h += "<h3>" + html_escape(name) + ": lengths</h3>";
      for (const auto& [unit, dist] : f["lengths"].items()) {
        h += "<div class=\"muted\">" + html_escape(unit) + "</div>" + percentile_table(dist);
        // One value throughout needs no chart.
        if (dist.contains("histogram") && get(dist, "min") != get(dist, "max")) {
          h += svg_histogram(dist["histogram"], unit);
        }
      }
    }
    if (f.contains("numbers")) {
      const auto& n = f["numbers"];
      h += "<h3>" + html_escape(name) + ": values</h3><table><tr><th>min</th><th>max</th><th>mean</th></tr><tr><td>" +
           num(get(n, "min"), 2) + "</td><td>" + num(get(n, "max"), 2) + "</td><td>" + num(get(n, "mean"), 2) +
           "</td></tr></table>";
    }
    if (f.contains("categorical")) {
      h += "<h3>" + html_escape(name) + ": categories</h3>";
      std::vector<std::tuple<std::string, double, std::string>> rows;
      for (const auto& c : f["categorical"]["frequencies"]) {
        if (rows.size() == 30) break;
        const auto& v = c["value"];
        rows.emplace_back(v.is_string() ? v.get<std::string>() : v.dump(), get(c, "count"),
                          num(get(c, "count")) + " (" + percent(get(c, "share")) + ")");
      }
      h += svg_bars(rows);
      size_t total = f["categorical"]["frequencies"].size();
      if (total > rows.size()) h += "<p class=\"muted\">" + num(static_cast<double>(total - rows.size())) + " more values in the JSON profile</p>";
    }
  }

  if (!text_field.empty()) {
    h += "<h2>Text field \"" + html_escape(text_field) + "\"</h2><p>" + count(member(text, "records")) +
         " records carry it, " + count(member(text, "without_field")) + " do not; " +
         count(member(text, "bytes")) + " bytes of text.</p>";
    if (p.contains("chat")) {
      const ProfileJson& chat = p["chat"];
      h += "<h3>Conversations</h3><p>" + count(member(chat, "records")) +
           " records are chats; their messages' texts, joined, are the text analysed below.</p>"
           "<div class=\"muted\">messages per conversation</div>" +
           percentile_table(member(chat, "messages"));
      std::vector<std::tuple<std::string, double, std::string>> roles;
      for (const auto& [role, n] : member(chat, "roles").items()) {
        roles.emplace_back(role.empty() ? "(none)" : role, n.get<double>(), count(n));
      }
      h += svg_bars(roles);
    }

    h += "<h3>Languages (CLD2)</h3>";
    std::vector<std::tuple<std::string, double, std::string>> langs;
    const auto& lang = member(p, "languages");
    for (const auto& l : member(lang, "mix")) {
      if (langs.size() == 20) break;
      langs.emplace_back(l.value("code", ""), get(l, "records"),
                         num(get(l, "records")) + " (" + percent(get(l, "share")) + ")");
    }
    h += svg_bars(langs);
    h += "<p class=\"muted\">" + count(member(lang, "unreliable")) +
         " records where CLD2 was unsure (short or mixed text)</p>";

    h += "<h3>Duplicates</h3>";
    const auto& exact = member(dups, "exact");
    const auto& near = member(dups, "near");
    h += "<p>Exact: " + count(member(exact, "duplicates")) + " records repeat an earlier text (" +
         percent(get(exact, "rate")) + ") in " + count(member(exact, "groups")) +
         " groups.<br>Near (" + html_escape(near.value("method", "")) + "): " +
         count(member(near, "clusters")) + " clusters; removing all but one of each would remove " +
         count(member(near, "removable")) + " records (" + percent(get(near, "rate")) + ").</p>";
    std::vector<std::tuple<std::string, double, std::string>> sizes;
    for (const auto& c : member(near, "cluster_sizes")) {
      if (sizes.size() == 20) break;
      sizes.emplace_back("size " + count(c["size"]), get(c, "clusters"), count(c["clusters"]) + " clusters");
    }
    if (!sizes.empty()) h += svg_bars(sizes);
    for (const auto& c : member(near, "largest")) {
      std::string lines;
      for (const auto& l : c["lines"]) lines += (lines.empty() ? "" : ", ") + count(l);
      h += "<p class=\"muted\">cluster of " + count(c["size"]) + ": lines " + lines + "</p>";
    }

    h += "<h3>Personal data and secrets</h3><p>" + count(member(pii, "findings")) + " findings in " +
         count(member(pii, "records")) + " records (" + percent(get(pii, "rate")) + ").</p>";
    std::vector<std::tuple<std::string, double, std::string>> types;
    for (const auto& [type, n] : member(pii, "by_type").items()) {
      if (n.get<double>() > 0) types.emplace_back(type, n.get<double>(), num(n.get<double>()));
    }
    if (!types.empty()) h += svg_bars(types);

    if (member(p, "quality").empty()) {
      h += "<h3>Quality filters at their defaults</h3><p class=\"muted\">not computed (--no-quality)</p>";
    } else {
      h += "<h3>Quality filters at their defaults</h3><p class=\"muted\">What each filter alone would remove "
           "(a record counts under the first rule it fails).</p><table><tr><th>filter</th><th>would remove</th>"
           "<th>rate</th><th>by rule</th></tr>";
      for (const auto& [name, q] : member(p, "quality").items()) {
        std::string rules;
        for (const auto& [rule, n] : member(q, "by_rule").items()) {
          rules += (rules.empty() ? "" : ", ") + html_escape(rule) + " " + count(n);
        }
        h += "<tr><td>" + html_escape(name) + "</td><td>" + count(q["would_remove"]) + "</td><td>" +
             percent(get(q, "rate")) + "</td><td style=\"text-align:left\">" + rules + "</td></tr>";
      }
      h += "</table>";
    }

    const auto& outliers = member(p, "outliers");
    h += "<h2>Outliers</h2><h3>Longest</h3>" + examples(member(outliers, "longest"), nullptr);
    h += "<h3>Shortest</h3>" + examples(member(outliers, "shortest"), nullptr);
    h += "<h3>Most repetitive</h3>" + examples(member(outliers, "most_repetitive"), "repeated_3gram_share");
  }
  h += "<p class=\"muted\">Made by Keel " KEEL_VERSION ".</p>\n</body></html>\n";
  return h;
}

}  // namespace keel::data
