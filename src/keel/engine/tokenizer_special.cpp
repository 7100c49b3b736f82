#include "keel/engine/tokenizer_special.h"

#include <algorithm>

namespace keel::engine {

SpecialTokenSplitter::SpecialTokenSplitter(std::vector<Special> specials) : specials_(std::move(specials)) {
  std::erase_if(specials_, [](const Special& s) { return s.text.empty(); });
  std::stable_sort(specials_.begin(), specials_.end(),
                   [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
  terminal_.push_back(-1);
  parent_.push_back(-1);
  for (size_t index = 0; index < specials_.size(); ++index) {
    const std::string& text = specials_[index].text;
    starts_[static_cast<unsigned char>(text[0])] = true;
    int32_t node = 0;
    for (char c : text) {
      const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
      auto it = edges_.find(edge);
      if (it == edges_.end()) {
        it = edges_.emplace(edge, static_cast<int32_t>(terminal_.size())).first;
        terminal_.push_back(-1);
        parent_.push_back(node);
      }
      node = it->second;
    }
    // Two tokens with one text: the first in specials_ order wins, as it would in
    // the partition below (the second never finds text left to match).
    if (terminal_[node] < 0) terminal_[node] = static_cast<int32_t>(index);
  }
  for (auto& below : below_) below.assign(terminal_.size(), 0);
  for (size_t node = 0; node < terminal_.size(); ++node) {
    if (terminal_[node] < 0) continue;
    const bool always = specials_[static_cast<size_t>(terminal_[node])].always;
    for (int32_t up = static_cast<int32_t>(node); up >= 0; up = parent_[static_cast<size_t>(up)]) {
      below_[1][static_cast<size_t>(up)] += 1;
      if (always) below_[0][static_cast<size_t>(up)] += 1;
    }
  }
}

void SpecialTokenSplitter::split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  if (text.empty()) return;
  // Which specials occur anywhere in the text: only they can cut it below. A walk
  // stops where every special below the node is found already (runs of spaces
  // against Gemma's space tokens would otherwise walk 31 deep at every byte).
  std::vector<char> present(specials_.size(), 0);
  const std::vector<int32_t>& below = below_[parse_special ? 1 : 0];
  std::vector<int32_t> found_below;  // per node, made at the first find
  size_t found = 0;
  for (size_t start = 0; start < text.size(); ++start) {
    if (!starts_[static_cast<unsigned char>(text[start])]) continue;
    int32_t node = 0;
    for (size_t i = start; i < text.size(); ++i) {
      auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
      if (it == edges_.end()) break;
      node = it->second;
      if (!found_below.empty() && found_below[static_cast<size_t>(node)] == below[static_cast<size_t>(node)]) break;
      const int32_t index = terminal_[static_cast<size_t>(node)];
      if (index >= 0 && !present[static_cast<size_t>(index)] &&
          (parse_special || specials_[static_cast<size_t>(index)].always)) {
        present[static_cast<size_t>(index)] = 1;
        ++found;
        if (found_below.empty()) found_below.assign(terminal_.size(), 0);
        for (int32_t up = node; up >= 0; up = parent_[static_cast<size_t>(up)]) ++found_below[static_cast<size_t>(up)];
      }
    }
  }

  std::vector<Fragment> fragments{{text, -1}};
  std::vector<Fragment> next;
  for (size_t index = 0; index < specials_.size() && found > 0; ++index) {
    if (!present[index]) continue;
    --found;
    const Special& special = specials_[index];
    next.clear();
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0 || fragment.text.find(special.text) == std::string_view::npos) {
        next.push_back(fragment);
        continue;
      }
      std::string_view rest = fragment.text;
      for (size_t at = rest.find(special.text); at != std::string_view::npos; at = rest.find(special.text)) {
        if (at > 0) next.push_back({rest.substr(0, at), -1});
        next.push_back({{}, special.id});
        rest.remove_prefix(at + special.text.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    fragments.swap(next);
  }
  out.insert(out.end(), fragments.begin(), fragments.end());
}

}  // namespace keel::engine
