// Charts: what a lesson measured on this machine (fl::measure), one plot per chart with a line
// per series, and the same figures as a table under it. fork-exec draws its timings here.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

#include "app/app.hpp"

namespace fl::ui {

namespace {

struct Series {
    std::string name;
    std::vector<ImVec2> points;  // (x, y), sorted by x; a later point at the same x replaces
};

std::vector<Series> series_of(const std::vector<Measure>& all, const std::string& chart) {
    std::vector<Series> out;
    for (const auto& m : all) {
        if (m.chart != chart) continue;
        auto s = std::find_if(out.begin(), out.end(), [&](auto& x) { return x.name == m.series; });
        if (s == out.end()) s = out.insert(out.end(), Series{m.series, {}});
        auto p = std::find_if(s->points.begin(), s->points.end(),
                              [&](auto& q) { return q.x == float(m.x); });
        if (p != s->points.end())
            p->y = float(m.y);
        else
            s->points.push_back({float(m.x), float(m.y)});
    }
    for (auto& s : out)
        std::sort(s.points.begin(), s.points.end(), [](auto& a, auto& b) { return a.x < b.x; });
    return out;
}

// A round number at or above V (1, 2, 5 times a power of ten), for the top of an axis.
float nice_ceil(float v) {
    if (v <= 0) return 1;
    float p = std::pow(10.0f, std::floor(std::log10(v)));
    for (float k : {1.0f, 2.0f, 5.0f, 10.0f})
        if (k * p >= v) return k * p;
    return 10 * p;
}

// "48840", "1685", "64.05", "0.039": whole numbers from 100 up, 4 significant digits below.
std::string number(float v) {
    char b[32];
    if (std::fabs(v) >= 100)
        std::snprintf(b, sizeof b, "%.0f", double(v));
    else
        std::snprintf(b, sizeof b, "%.4g", double(v));
    return b;
}

void plot(ViewContext& ctx, const ChartDef& def, const std::vector<Series>& series) {
    const Theme& th = ctx.theme;
    float x0 = 1e30f, x1 = -1e30f, y1 = 0, ymin = 1e30f;
    for (auto& s : series)
        for (auto& p : s.points) {
            x0 = std::min(x0, p.x);
            x1 = std::max(x1, p.x);
            y1 = std::max(y1, p.y);
            if (p.y > 0) ymin = std::min(ymin, p.y);
        }
    if (x1 <= x0) x1 = x0 + 1;
    // A log scale when the figures span more than about 20x (else the small series lie flat
    // on the axis, one under another); the learner may turn it off or on ("log scale").
    bool span = ymin < 1e30f && y1 > 20 * ymin;
    ImGuiStorage* st = ImGui::GetStateStorage();
    ImGuiID key = ImGui::GetID(("log_" + def.id).c_str());
    int* mode = st->GetIntRef(key, 0);  // 0: automatic, 1: log, 2: linear
    bool log = *mode == 0 ? span : *mode == 1;
    if (ymin >= 1e30f) ymin = 1;
    const float top = y1;
    float l0 = 0, l1 = 1;  // the decades shown, on a log scale
    auto set_axis = [&] {
        if (log) {
            l0 = std::floor(std::log10(ymin));
            l1 = std::max(l0 + 1, std::ceil(std::log10(std::max(top, ymin))));
            y1 = std::pow(10.0f, l1);
        } else {
            y1 = nice_ceil(top);
        }
    };

    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float s = th.scale;
    // The legend: a row above the plot, wrapping when the pane is narrow.
    for (size_t i = 0; i < series.size(); ++i) {
        float item_w = 20 * s + ImGui::CalcTextSize(series[i].name.c_str()).x;
        if (i > 0) {
            ImGui::SameLine(0, 16 * s);
            if (ImGui::GetContentRegionAvail().x < item_w) ImGui::NewLine();
        }
        ImVec2 p = ImGui::GetCursorScreenPos();
        float lh = ImGui::GetTextLineHeight();
        dl->AddRectFilled({p.x, p.y + lh * 0.3f}, {p.x + 14 * s, p.y + lh * 0.7f},
                          th.process_color(int(i)));
        ImGui::Dummy({18 * s, lh});
        ImGui::SameLine(0, 2 * s);
        ImGui::TextUnformatted(series[i].name.c_str());
    }
    // The scale's switch on the legend's line when it fits: a line less above the plot.
    const char* log_label = "log scale";
    float cb_w = ImGui::GetFrameHeight() + ImGui::GetStyle().ItemInnerSpacing.x + ImGui::CalcTextSize(log_label).x;
    ImGui::SameLine(0, 24 * s);
    if (ImGui::GetContentRegionAvail().x < cb_w) ImGui::NewLine();
    if (ImGui::Checkbox((std::string(log_label) + "##" + def.id).c_str(), &log)) *mode = log ? 1 : 2;
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("Each step up the axis is 10 times the one below, so small and large "
                          "figures both show (on by itself when they span more than 20x)");
    set_axis();
    const float w = std::max(200.0f * s, ImGui::GetContentRegionAvail().x);
    // As tall as the pane leaves (a projector's lower pane is short), within bounds.
    const float room = ImGui::GetContentRegionAvail().y - ImGui::GetStyle().ItemSpacing.y;
    const float h = std::clamp(std::min(w * 0.45f, room), 110.0f * s, 320.0f * s);
    const ImVec2 at = ImGui::GetCursorScreenPos();
    const float left = ImGui::CalcTextSize(number(y1).c_str()).x + 10 * s;
    const float bottom = ImGui::GetTextLineHeight() * 2 + 6 * s;
    const ImVec2 o{at.x + left, at.y + h - bottom};  // the origin on screen
    const float pw = w - left - 12 * s, ph = h - bottom - 8 * s;
    auto y_frac = [&](float y) {
        if (!log) return y / y1;
        return (std::log10(std::max(y, std::pow(10.0f, l0))) - l0) / (l1 - l0);
    };
    auto to_screen = [&](ImVec2 p) {
        return ImVec2{o.x + (p.x - x0) / (x1 - x0) * pw, o.y - y_frac(p.y) * ph};
    };

    // Axes and a light grid: four steps up the y axis (a decade each on a log scale), a tick
    // at every measured x.
    int steps = log ? int(l1 - l0) : 4;
    for (int i = 0; i <= steps; ++i) {
        float yv = log ? std::pow(10.0f, l0 + float(i)) : y1 * float(i) / 4;
        float ys = o.y - ph * float(i) / float(steps);
        dl->AddLine({o.x, ys}, {o.x + pw, ys}, with_alpha(th.dim(), i ? 0.25f : 1.0f), th.line * 0.7f);
        std::string t = number(yv);
        dl->AddText({o.x - ImGui::CalcTextSize(t.c_str()).x - 5 * s, ys - ImGui::GetTextLineHeight() / 2},
                    th.dim(), t.c_str());
    }
    std::vector<float> xs;
    for (auto& se : series)
        for (auto& p : se.points) xs.push_back(p.x);
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    float last_label_end = -1e30f;
    for (float xv : xs) {
        float xs_ = to_screen({xv, 0}).x;
        dl->AddLine({xs_, o.y}, {xs_, o.y + 4 * s}, th.dim(), th.line * 0.7f);
        std::string t = number(xv);
        float tw = ImGui::CalcTextSize(t.c_str()).x;
        if (xs_ - tw / 2 > last_label_end + 4 * s) {  // skip labels that would overlap
            dl->AddText({xs_ - tw / 2, o.y + 5 * s}, th.dim(), t.c_str());
            last_label_end = xs_ + tw / 2;
        }
    }
    dl->AddLine({o.x, o.y}, {o.x, o.y - ph}, th.dim(), th.line * 0.7f);
    std::string xl = def.x_label;
    dl->AddText({o.x + pw / 2 - ImGui::CalcTextSize(xl.c_str()).x / 2,
                 o.y + 5 * s + ImGui::GetTextLineHeight()},
                th.dim(), xl.c_str());

    // One line per series, then every series' points on top, each series its own shape
    // (circle, square, triangle, diamond). Drawn first, a series is drawn wider and its marks
    // larger: where two series meet (fork+exec's figures are fork alone's), the one underneath
    // shows as a border around the one on top instead of vanishing under it.
    const size_t n = series.size();
    for (size_t i = 0; i < n; ++i) {
        std::vector<ImVec2> pts;
        for (auto& p : series[i].points) pts.push_back(to_screen(p));
        float width = th.line * 1.2f + 1.1f * s * float(n - 1 - i);
        if (pts.size() > 1) dl->AddPolyline(pts.data(), int(pts.size()), th.process_color(int(i)), 0, width);
    }
    for (size_t i = 0; i < n; ++i) {
        ImU32 col = th.process_color(int(i));
        float r = (3.5f + 1.2f * float(n - 1 - i)) * s;
        for (auto& sp : series[i].points) {
            ImVec2 p = to_screen(sp);
            switch (i % 4) {
                case 0: dl->AddCircleFilled(p, r, col); break;
                case 1: dl->AddRectFilled({p.x - r, p.y - r}, {p.x + r, p.y + r}, col); break;
                case 2: dl->AddTriangleFilled({p.x, p.y - r * 1.2f}, {p.x + r * 1.1f, p.y + r},
                                              {p.x - r * 1.1f, p.y + r}, col); break;
                default: dl->AddQuadFilled({p.x, p.y - r * 1.3f}, {p.x + r * 1.3f, p.y},
                                           {p.x, p.y + r * 1.3f}, {p.x - r * 1.3f, p.y}, col); break;
            }
        }
    }
    ImGui::Dummy({w, h});
}

void table(const ChartDef& def, const std::vector<Series>& series) {
    std::vector<float> xs;
    for (auto& se : series)
        for (auto& p : se.points) xs.push_back(p.x);
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    // Columns as wide as their headers and figures: a narrow pane scrolls the table sideways
    // rather than cutting a header ("fork al...").
    ImGuiTableFlags flags = ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg |
                            ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_ScrollX;
    const ImGuiStyle& st = ImGui::GetStyle();
    float row_h = ImGui::GetTextLineHeight() + 2 * st.CellPadding.y + 1;
    ImVec2 outer{0, float(xs.size() + 1) * row_h + st.ScrollbarSize + 4};
    if (!ImGui::BeginTable(("##t" + def.id).c_str(), int(series.size()) + 1, flags, outer)) return;
    ImGui::TableSetupColumn(def.x_label.c_str());
    for (auto& se : series) ImGui::TableSetupColumn(se.name.c_str());
    ImGui::TableHeadersRow();
    for (float xv : xs) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(number(xv).c_str());
        for (auto& se : series) {
            ImGui::TableNextColumn();
            auto p = std::find_if(se.points.begin(), se.points.end(),
                                  [&](auto& q) { return q.x == xv; });
            ImGui::TextUnformatted(p != se.points.end() ? number(p->y).c_str() : "-");
        }
    }
    ImGui::EndTable();
}

}  // namespace

void draw_charts(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    const Lesson* lesson = find_lesson(m.lesson);
    if (!lesson || lesson->charts.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.dim());
        ImGui::TextWrapped("This lesson measures nothing. Lessons that time things on your "
                           "machine (fork-exec) draw their figures here.");
        ImGui::PopStyleColor();
        return;
    }
    if (m.measures.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.dim());
        ImGui::TextWrapped("No measurement yet. Run the lesson: its figures, measured on this "
                           "machine, appear here as they come.");
        ImGui::PopStyleColor();
        return;
    }
    for (const ChartDef& def : lesson->charts) {
        auto series = series_of(m.measures, def.id);
        if (series.empty()) continue;
        ImGui::TextWrapped("%s", def.title.c_str());
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.dim());
        ImGui::TextWrapped("%s, measured on this machine", def.y_label.c_str());
        ImGui::PopStyleColor();
        plot(ctx, def, series);
        table(def, series);
        ImGui::Spacing();
        ImGui::Spacing();
    }
}

}  // namespace fl::ui
