#pragma once
// An optional value kept on the heap: empty, it costs one pointer instead of the value's
// whole size. For members that are usually empty in objects kept by the hundred thousand
// (a rule state's open alert: 352 bytes inline, absent almost always). Copies deep.

#include <memory>
#include <utility>

namespace alert {

template <class T>
class boxed {
public:
  boxed() = default;
  boxed(const boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  boxed(boxed&&) noexcept = default;
  boxed& operator=(const boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  boxed& operator=(boxed&&) noexcept = default;
  ~boxed() = default;

  boxed& operator=(const T& v) {
    if (p_) *p_ = v;
    else p_ = std::make_unique<T>(v);
    return *this;
  }
  boxed& operator=(T&& v) {
    if (p_) *p_ = std::move(v);
    else p_ = std::make_unique<T>(std::move(v));
    return *this;
  }

  bool has_value() const noexcept { return p_ != nullptr; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  void reset() noexcept { p_.reset(); }

private:
  std::unique_ptr<T> p_;
};

}  // namespace alert
