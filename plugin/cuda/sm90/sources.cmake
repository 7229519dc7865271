# Sources of the sm_90a SageAttention path (plugin/cuda/sm90). Sets SAGE_SM90_SOURCES (absolute paths).
set(SAGE_SM90_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/host/plan.cpp
    ${CMAKE_CURRENT_LIST_DIR}/host/tensor_map.cpp
    ${CMAKE_CURRENT_LIST_DIR}/host/sm90_entry.cpp
    ${CMAKE_CURRENT_LIST_DIR}/kernels/prepass.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_hd64.cu
    ${CMAKE_CURRENT_LIST_DIR}/kernels/attention_hd128.cu)
# The plain-C test entry points (host/sm90_c_api.h), for libsage_sm90.so only.
set(SAGE_SM90_C_API_SOURCES ${CMAKE_CURRENT_LIST_DIR}/host/sm90_c_api.cpp)
