#pragma once
// Binary encodings of alerts, alert events and rule states for snapshots and the alert
// journal. Internal to storage/; every decoder reports errc::corruption, never throws.

#include <string>
#include <string_view>

#include "engine/rules.hpp"
#include "engine/status.hpp"
#include "storage/bytes.hpp"

namespace alert::storage {

void put_alert(std::string& out, const alert_record& a);
bool get_alert(bytes::reader& in, alert_record& a);

void put_rule_states(std::string& out, const rule_states& rs);
bool get_rule_states(bytes::reader& in, rule_states& rs);

std::string encode_alert_event(const alert_event& e);
result<alert_event> decode_alert_event(std::string_view bytes);

}  // namespace alert::storage
