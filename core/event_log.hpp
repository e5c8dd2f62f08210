#pragma once
// A run's events as the model keeps them: compact, appended in order, read back as Events.
//
// An Event is 144 bytes (two std::string among its fields) whatever it says; a stored one
// here is about 30: the fields that differ from their defaults, as varints, times and pids
// relative to the log's first event, the task id interned, the text inline. Reading one
// decodes a copy (views read only what they show, or what is new since their last frame).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event.hpp"

namespace fl {

class EventLog {
public:
    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = Event;
        using difference_type = std::ptrdiff_t;
        using reference = Event;  // a decoded copy
        struct pointer {
            Event e;
            const Event* operator->() const { return &e; }
        };

        iterator() = default;
        iterator(const EventLog* log, size_t i) : log_(log), i_(i) {}
        Event operator*() const { return (*log_)[i_]; }
        pointer operator->() const { return {(*log_)[i_]}; }
        Event operator[](difference_type n) const { return (*log_)[size_t(difference_type(i_) + n)]; }
        iterator& operator++() { return ++i_, *this; }
        iterator& operator--() { return --i_, *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        iterator operator--(int) { iterator t = *this; --i_; return t; }
        iterator& operator+=(difference_type n) { return i_ = size_t(difference_type(i_) + n), *this; }
        iterator& operator-=(difference_type n) { return i_ = size_t(difference_type(i_) - n), *this; }
        friend iterator operator+(iterator a, difference_type n) { return a += n; }
        friend iterator operator+(difference_type n, iterator a) { return a += n; }
        friend iterator operator-(iterator a, difference_type n) { return a -= n; }
        friend difference_type operator-(const iterator& a, const iterator& b) {
            return difference_type(a.i_) - difference_type(b.i_);
        }
        friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }
        friend auto operator<=>(const iterator& a, const iterator& b) { return a.i_ <=> b.i_; }

    private:
        const EventLog* log_ = nullptr;
        size_t i_ = 0;
    };
    using const_iterator = iterator;
    using reverse_iterator = std::reverse_iterator<iterator>;
    using value_type = Event;

    EventLog() = default;
    EventLog(const std::vector<Event>& events);  // NOLINT: converts, as a vector did
    EventLog& operator=(const std::vector<Event>& events);

    void push_back(const Event& e);
    void clear();
    size_t size() const { return index_.size(); }
    bool empty() const { return index_.empty(); }
    Event operator[](size_t i) const;
    Event front() const { return (*this)[0]; }
    Event back() const { return (*this)[size() - 1]; }
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, size()}; }
    reverse_iterator rbegin() const { return reverse_iterator(end()); }
    reverse_iterator rend() const { return reverse_iterator(begin()); }
    std::vector<Event> to_vector() const;

    // Heap bytes held (chunks, index, task table): what the events cost in memory.
    size_t bytes() const;

private:
    static constexpr size_t kChunk = 64 * 1024;
    std::vector<std::vector<uint8_t>> chunks_;  // each sized once, never grown
    size_t used_ = 0;                  // bytes used in the last chunk
    std::deque<uint64_t> index_;       // per event: chunk << 32 | offset (no doubling slack)
    std::vector<std::string> tasks_;
    std::unordered_map<std::string, uint32_t> task_ids_;
    // Anchors: the first event's seq, time and pid (later ones are stored relative to them).
    uint64_t seq0_ = 0, t0_ = 0;
    int64_t pid0_ = 0;
};

}  // namespace fl
