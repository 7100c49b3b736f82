// A dataset profile (dataset_profile.h) as one standalone HTML page: tables and
// charts drawn as inline SVG, styles inline, no script and nothing fetched, so it
// opens from a file without a server. Every text from the data is HTML-escaped.
#pragma once

#include <string>
#include <string_view>

#include "keel/data/dataset_profile.h"

namespace keel::data {

std::string profile_html(const ProfileJson& profile, const std::string& title);

// "&", "<", ">", '"' and "'" escaped, for text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace keel::data
