// Cuts the special tokens (control, user-defined, unknown) written in a text out of it,
// in llama.cpp's order (tokenizer_st_partition): the longest token first, each one
// splitting the text pieces that the longer ones left. Used by Tokenizer::encode for
// every tokenizer model. A trie over the token texts finds, in one pass, which tokens
// occur in the text at all, so a vocabulary with thousands of special tokens (Gemma's
// <unusedN>) costs only the few a text contains. Works on bytes: any input is fine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace keel::engine {

using TokenId = int32_t;

class SpecialTokenSplitter {
 public:
  struct Special {
    std::string text;  // never empty
    TokenId id;
    bool always;  // user-defined: recognised even when special parsing is off
  };
  // A piece of the text still to be tokenized (token < 0), or a recognised token.
  struct Fragment {
    std::string_view text;
    TokenId token = -1;
  };

  SpecialTokenSplitter() = default;
  // Specials in id order; those with equal text lengths are tried in that order.
  explicit SpecialTokenSplitter(std::vector<Special> specials);

  // Appends text's fragments to out (views into text). parse_special: control and
  // unknown tokens are recognised too, not only the `always` ones.
  void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

  size_t size() const { return specials_.size(); }

 private:
  std::vector<Special> specials_;  // longest text first
  // The trie: node 0 is the root; edges_ maps (node << 8 | byte) to the child node;
  // terminal_[node] is the index in specials_ of the token ending there, or -1.
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> terminal_;
  std::vector<int32_t> parent_;  // -1 for the root
  // How many specials end in each node's subtree: [0] the `always` ones, [1] all.
  std::vector<int32_t> below_[2];
  bool starts_[256] = {};  // bytes some special text starts with
};

}  // namespace keel::engine
