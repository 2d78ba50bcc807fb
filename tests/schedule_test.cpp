#include <gtest/gtest.h>
#include "diffuse/schedule.hpp"
TEST(Schedule, Placeholder) { EXPECT_EQ(diffuse::make_schedule({}).T(), 1000); }
