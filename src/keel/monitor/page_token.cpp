#include "keel/monitor/page_token.h"

namespace keel::monitor {

std::string make_page_token(int64_t at, const std::string& id) {
  return std::to_string(at) + ":" + id;
}

Status parse_page_token(const std::string& token, int64_t* at, std::string* id) {
  size_t colon = token.find(':');
  bool well_formed = colon != std::string::npos && colon > 0 && colon <= 18 &&
                     token.find_first_not_of("0123456789") == colon && colon + 1 < token.size();
  if (!well_formed) return invalid_argument("page_token '" + token + "' is not one this server gave out");
  *at = std::stoll(token.substr(0, colon));
  *id = token.substr(colon + 1);
  return Status::Ok();
}

}  // namespace keel::monitor
